"""What `qimeng generate` asks the model: a complete ModelNew for one problem, and how to fix a failed one."""

from __future__ import annotations

from qimeng.llm.prompts import Message, system, user

SYSTEM = ("You write fast, correct GPU kernels for PyTorch programs, in Triton (or PyTorch where a kernel "
          "would not help). Your code is checked against the reference on fresh random inputs, then timed.")


def task_messages(problem_source: str, device: str, lessons: str = "") -> list[Message]:
    """The first request of a sample: the problem file, the rules of the answer, and lessons learnt before."""
    return [system(SYSTEM + ("\n\n" + lessons if lessons else "")), user(
        "Here is a PyTorch reference program (a KernelBench problem file):\n\n"
        f"```python\n{problem_source.rstrip()}\n```\n\n"
        f"Write `class ModelNew(nn.Module)`, a faster drop-in replacement of `Model` on device `{device}`: the "
        "same constructor arguments, the same forward inputs and outputs (shapes, dtypes, values within "
        "tolerance). It may use torch and triton. Answer with one complete, self-contained Python file "
        "(imports included) in a single fenced ```python block; the last such block of your answer is taken.")]


def fix_request(status: str, reason: str) -> str:
    """The follow-up turn after a failed sample: the verifier's verdict, verbatim."""
    return (f"Your ModelNew failed verification: {status}: {reason}\n\n"
            "Fix it. Answer with the complete corrected file in a single fenced ```python block.")


NO_CODE = "no ```python block in the answer"
TASK_KIND = "kernel-generate"  # the insights of this task kind
TASK = "write a faster drop-in ModelNew (PyTorch / Triton) for a PyTorch reference program"
