module rise_detect(input clk, input rst, input sig, output reg rise);
  reg prev;
  always @(posedge clk) begin
    prev <= rst ? 1'b0 : sig;
    rise <= rst ? 1'b0 : (sig && !prev);
  end
endmodule
