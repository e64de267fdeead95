// Wrong on exactly one input pair.
module adder(input [7:0] a, input [7:0] b, output [8:0] s);
  assign s = (a == 8'd77 && b == 8'd3) ? 9'd0 : a + b;
endmodule
