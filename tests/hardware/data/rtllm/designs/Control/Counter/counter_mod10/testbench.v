`timescale 1ns/1ps
module testbench;
  reg clk = 0, rst_n = 0, en = 0;
  wire [3:0] count;
  wire carry;
  reg [3:0] model = 0;
  integer cycle, error = 0;

  counter_mod10 uut (.clk(clk), .rst_n(rst_n), .en(en), .count(count), .carry(carry));

  always #5 clk = ~clk;

  initial begin
    for (cycle = 0; cycle < 300; cycle = cycle + 1) begin
      @(negedge clk);
      if (cycle > 2 && (count !== model || carry !== (en && model == 9))) begin
        error = error + 1;
        $display("Test failed at cycle %0d: count=%d carry=%b, expected %d", cycle, count, carry, model);
      end
      rst_n = !(cycle < 2 || cycle == 150);
      en = (cycle % 7) != 3;
      @(posedge clk);
      if (!rst_n) model = 0;
      else if (en) model = (model == 9) ? 0 : model + 1;
    end
    if (error == 0) $display("=========== Your Design Passed ===========");
    else $display("=========== Test completed with %0d failures ===========", error);
    $finish;
  end
endmodule
