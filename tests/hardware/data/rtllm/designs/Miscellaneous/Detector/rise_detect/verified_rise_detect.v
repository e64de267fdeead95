module rise_detect(input clk, input rst, input sig, output reg rise);
  reg last;
  always @(posedge clk)
    if (rst) begin
      last <= 1'b0;
      rise <= 1'b0;
    end else begin
      last <= sig;
      rise <= sig & ~last;
    end
endmodule
