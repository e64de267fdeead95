"""Hand-written kernel templates (GEMM; attention later) filled in per shape, precision and epilogue."""
