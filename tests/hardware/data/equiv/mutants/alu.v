// 2-bit opcode ALU; the default branch is unreachable (dead code)
module top(input [1:0] op, input [3:0] a, input [3:0] b, output reg [3:0] y);
  always @* begin
    case (op)
      2'd0: y = a & b;
      2'd1: y = a | b;
      2'd2: y = a ^ b;
      2'd3: y = a - b;
      default: y = a + b;
    endcase
  end
endmodule
