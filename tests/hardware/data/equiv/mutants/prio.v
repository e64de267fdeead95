// priority encoder (combinational)
module top(input [3:0] x, output [1:0] y, output v);
  assign y = x[3] ? 2'd3 : x[2] ? 2'd2 : x[1] ? 2'd1 : 2'd0;
  assign v = x != 4'd0;
endmodule
