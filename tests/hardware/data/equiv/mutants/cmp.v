// comparator (combinational)
module top(input [3:0] a, input [3:0] b, output lt, output eq, output [1:0] hi);
  assign lt = a < b;
  assign eq = a == b;
  assign hi = {a[3], b[3]};
endmodule
