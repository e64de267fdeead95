// altclk: d
// shift register without reset (its output is X until filled)
module top(input clk, input d, output reg [3:0] q);
  always @(posedge clk) q <= {q[2:0], d};
endmodule
