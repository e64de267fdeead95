// altclk: x
// detector of the sequence 1,0,1 (Mealy), synchronous active-high reset
module top(input clk, input reset, input x, output z);
  reg [1:0] s;
  always @(posedge clk) begin
    if (reset) s <= 2'd0;
    else case (s)
      2'd0: s <= x ? 2'd1 : 2'd0;
      2'd1: s <= x ? 2'd1 : 2'd2;
      default: s <= x ? 2'd1 : 2'd0;
    endcase
  end
  assign z = (s == 2'd2) & x;
endmodule
