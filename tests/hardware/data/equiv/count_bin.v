module counter(input clk, input rst_n, output [3:0] q);
  reg [3:0] c;
  always @(posedge clk) if (!rst_n) c <= 0; else c <= c + 4'd1;
  assign q = c;
endmodule
