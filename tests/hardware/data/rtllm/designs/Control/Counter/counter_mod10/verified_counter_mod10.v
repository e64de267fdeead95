module counter_mod10(input clk, input rst_n, input en, output reg [3:0] count, output carry);
  always @(posedge clk)
    if (!rst_n) count <= 4'd0;
    else if (en) count <= (count == 4'd9) ? 4'd0 : count + 4'd1;
  assign carry = en && count == 4'd9;
endmodule
