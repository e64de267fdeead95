// Synchronous reset: differs from dff_async.v while the reset is high before a clock edge.
module dff(input clk, input areset, input [7:0] d, output reg [7:0] q);
  always @(posedge clk) if (areset) q <= 8'h34; else q <= d;
endmodule
