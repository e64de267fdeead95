// Simulation never finishes: a zero-delay oscillation keeps time from advancing.
module adder(input [7:0] a, input [7:0] b, output [8:0] s);
  reg t;
  initial t = 1'b0;
  always @(a or t) t <= ~t;
  assign s = a + b;
endmodule
