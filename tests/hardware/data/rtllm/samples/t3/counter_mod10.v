// never lets simulated time advance past the first clock edge: the harness must stop it with its timeout
module counter_mod10(input clk, input rst_n, input en, output reg [3:0] count, output carry);
  assign carry = 1'b0;
  always @(posedge clk) begin : spin
    integer i;
    for (i = 0; i >= 0; i = i + 1) count <= i[3:0];
  end
endmodule
