module dff(input clk, input areset, input [7:0] d, output reg [7:0] q);
  always @(posedge clk or posedge areset) if (areset) q <= 8'h34; else q <= d;
endmodule
