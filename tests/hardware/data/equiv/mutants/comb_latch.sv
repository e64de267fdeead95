// an incomplete case in always_comb: a latch holds y while s is 3
module top(input [1:0] s, input [3:0] d, output reg [3:0] y);
  always_comb begin
    case (s)
      2'd0: y = d;
      2'd1: y = ~d;
      2'd2: y = d ^ 4'd5;
    endcase
  end
endmodule
