"""Software agent for tensor kernels: problems, verification, timing, and the expert engine."""
