// altclk: en
// register with synchronous active-high reset and enable
module top(input clk, input rst, input en, input [3:0] d, output reg [3:0] q);
  always @(posedge clk) begin
    if (rst) q <= 4'd0;
    else if (en) q <= d;
  end
endmodule
