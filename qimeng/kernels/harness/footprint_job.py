"""The sandboxed job behind ``footprint.py`` (``python -m qimeng.kernels.harness.footprint_job``): a
problem's input, parameter and output sizes, taken on the meta device, so full sizes cost no memory.

Replies ``{"kind": "sizes", "inputs": bytes, "params": bytes, "outputs": bytes or null}``; a part that
cannot be made on the meta device is null (``outputs`` when the forward has no meta kernel).
"""

from __future__ import annotations

from typing import Any

import torch

from qimeng.core.sandbox import job_main
from qimeng.core.verdict import BadInput
from qimeng.kernels.harness.problem import load_problem


def tensor_bytes(values: Any) -> int:
    """Bytes of the tensors in ``values`` (nested lists, tuples, dicts), meta tensors included."""
    if isinstance(values, torch.Tensor):
        return values.numel() * values.element_size()
    if isinstance(values, (list, tuple)):
        return sum(tensor_bytes(v) for v in values)
    if isinstance(values, dict):
        return sum(tensor_bytes(v) for v in values.values())
    return 0


def _on_meta(make: Any) -> Any:
    try:
        with torch.device("meta"):
            return make()
    except Exception:  # noqa: BLE001  (an operator without a meta kernel, a .item() on a meta tensor)
        return None


def handle(payload: dict) -> dict:
    try:
        problem = load_problem(payload["problem"], small=payload.get("small", False))
    except BadInput as exc:
        return {"kind": "bad_input", "reason": str(exc)}
    torch.manual_seed(0)
    inputs = _on_meta(problem.get_inputs)
    model = _on_meta(lambda: problem.model_cls(*problem.get_init_inputs()))
    params = None if model is None else tensor_bytes(list(model.state_dict().values()))
    outputs = None
    if inputs is not None and model is not None:
        with torch.no_grad():
            outputs = _on_meta(lambda: tensor_bytes(model(*inputs)))
    return {"kind": "sizes", "inputs": None if inputs is None else tensor_bytes(inputs), "params": params,
            "outputs": outputs}


if __name__ == "__main__":
    job_main(handle)
