"""Renderers of the kernel IR: Triton today (CUDA C++ and C are planned behind the same interface)."""
