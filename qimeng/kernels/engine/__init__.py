"""The expert engine (`qimeng optimize`): capture, kernel IR, macro steps, codegen, search, tuning."""
