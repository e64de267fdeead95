module TopModule(input clk, input reset, input [7:0] d, output reg [7:0] q);
  // never lets simulated time advance: the harness must stop it with its timeout
  always @* begin : spin
    integer i;
    for (i = 0; i >= 0; i = i + 1) q = d;
  end
endmodule
