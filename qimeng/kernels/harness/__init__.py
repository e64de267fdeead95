"""The verifier and the meter: sandboxed evaluation of kernel candidates (`qimeng eval`)."""
