// A Gray-code state decoded to binary: equivalent, but not provable by plain induction.
module counter(input clk, input rst_n, output [3:0] q);
  reg [3:0] g;
  wire [3:0] b = g ^ (g >> 1) ^ (g >> 2) ^ (g >> 3);
  wire [3:0] nb = b + 4'd1;
  always @(posedge clk) if (!rst_n) g <= 0; else g <= nb ^ (nb >> 1);
  assign q = b;
endmodule
