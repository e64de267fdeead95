`timescale 1ns/1ps
module testbench;
  reg clk = 0, rst = 1, sig = 0;
  reg pattern [0:11];
  wire rise;
  reg last = 0, expected = 0;
  integer i, error = 0;

  rise_detect uut (.clk(clk), .rst(rst), .sig(sig), .rise(rise));

  always #5 clk = ~clk;

  initial begin
    $readmemb("stimulus.txt", pattern);
    @(negedge clk);
    @(negedge clk) rst = 0;
    for (i = 0; i < 48; i = i + 1) begin
      sig = pattern[i % 12];
      @(posedge clk);
      expected = sig & ~last;
      last = sig;
      @(negedge clk);
      if (rise !== expected) begin
        error = error + 1;
        $display("Test failed at step %0d: sig=%b rise=%b expected %b", i, sig, rise, expected);
      end
    end
    if (error == 0) $display("=========== Your Design Passed ===========");
    else $display("=========== Test completed with %0d failures ===========", error);
    $finish;
  end
endmodule
