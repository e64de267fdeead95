"""Backend-neutral kernel IR: index expressions, value expressions, kernels."""
