// altclk: en
// counter with asynchronous active-low reset and enable
module top(input clk, input rst_n, input en, output reg [2:0] q);
  always @(posedge clk or negedge rst_n) begin
    if (!rst_n) q <= 3'd0;
    else if (en) q <= q + 3'd1;
  end
endmodule
