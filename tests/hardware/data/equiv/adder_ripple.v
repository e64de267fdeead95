// The same adder built from full adders in a submodule (equivalent).
module full_add(input x, input y, input ci, output s, output co);
  assign s = x ^ y ^ ci;
  assign co = (x & y) | (ci & (x ^ y));
endmodule
module adder(input [7:0] a, input [7:0] b, output [8:0] s);
  wire [8:0] c;
  assign c[0] = 1'b0;
  genvar i;
  generate for (i = 0; i < 8; i = i + 1) begin : bit_
    full_add fa(.x(a[i]), .y(b[i]), .ci(c[i]), .s(s[i]), .co(c[i + 1]));
  end endgenerate
  assign s[8] = c[8];
endmodule
