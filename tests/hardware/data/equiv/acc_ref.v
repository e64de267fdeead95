module acc(input clk, input reset, input [3:0] d, output reg [3:0] q, output z);
  always @(posedge clk) if (reset) q <= 0; else q <= q + d;
  assign z = q[0] ^ d[1];
endmodule
