"""Circuits learned from input/output examples with Binary Speculation Diagrams (QiMeng-CPU's method)."""

from qimeng.hardware.bsd.diagram import Diagram
from qimeng.hardware.bsd.emit import emit_verilog
from qimeng.hardware.bsd.learn import LearnResult, learn_circuit
from qimeng.hardware.bsd.oracle import FunctionOracle, Oracle, load_oracle
from qimeng.hardware.bsd.sampling import SamplingPlan, learn_diagram

__all__ = [
    "Diagram", "FunctionOracle", "LearnResult", "Oracle", "SamplingPlan",
    "emit_verilog", "learn_circuit", "learn_diagram", "load_oracle",
]
