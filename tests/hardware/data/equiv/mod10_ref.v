// Counts 0..9; flag is 1 only in the unreachable state 255, so it is always 0 after a reset.
module mod10(input clk, input rst_n, output flag);
  reg [7:0] c;
  always @(posedge clk) if (!rst_n) c <= 0; else if (c == 8'd9) c <= 0; else c <= c + 8'd1;
  assign flag = (c == 8'd255);
endmodule
