"""qimeng: designs fast, verified low-level code (GPU/CPU kernels, Verilog) automatically."""

__version__ = "0.1.0"
