module adder_4bit(input [3:0] a, input [3:0] b, input cin, output [3:0] sum, output cout);
  wire [4:0] c;
  assign c[0] = cin;
  genvar i;
  generate for (i = 0; i < 4; i = i + 1) begin : fa
    assign sum[i] = a[i] ^ b[i] ^ c[i];
    assign c[i + 1] = (a[i] & b[i]) | (c[i] & (a[i] ^ b[i]));
  end endgenerate
  assign cout = c[4];
endmodule
