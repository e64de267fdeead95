// nolatch
// altclk: en
// accumulator without reset, set by an initial value
module top(input clk, input en, input [2:0] d, output reg [3:0] acc);
  initial acc = 4'd0;
  always @(posedge clk) if (en) acc <= acc + d;
endmodule
