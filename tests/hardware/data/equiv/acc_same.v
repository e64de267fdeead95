// Same behaviour, different structure.
module acc(input clk, input reset, input [3:0] d, output [3:0] q, output z);
  reg [3:0] s;
  always @(posedge clk) begin
    if (reset) s <= 4'd0;
    else s <= s + d;
  end
  assign q = s;
  assign z = s[0] ^ d[1];
endmodule
