// altclk: areset
// `if (!areset)` inside a `posedge areset` block, and SystemVerilog casts
module top(input clk, input areset, input [3:0] d, output reg [3:0] q, output [5:0] w);
  always @(posedge clk or posedge areset) begin
    if (!areset) q <= d;
    else q <= 4'd9;
  end
  assign w = 6'(q) + 6'(d);
endmodule
