// altclk: x
// rising-edge detector: output combinational in the input and a register
module top(input clk, input x, output rise, output fall);
  reg prev;
  always @(posedge clk) prev <= x;
  assign rise = x & ~prev;
  assign fall = ~x & prev;
endmodule
