"""Hardware agent: Verilog equivalence checking, a VerilogEval harness, circuits learned from examples."""
