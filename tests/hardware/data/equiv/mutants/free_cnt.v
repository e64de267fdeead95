// nolatch
// altclk: en
// free-running counter without reset: X forever in simulation, so nothing can be decided
module top(input clk, input en, output reg [2:0] q);
  always @(posedge clk) if (en) q <= q + 3'd1;
endmodule
