module counter_mod10(input clk, input rst_n, input en, output reg [3:0] count, output carry);
  assign carry = en & (count == 4'd9);
  always @(posedge clk) begin
    if (~rst_n) count <= 0;
    else if (en && count == 4'd9) count <= 0;
    else if (en) count <= count + 1'b1;
  end
endmodule
