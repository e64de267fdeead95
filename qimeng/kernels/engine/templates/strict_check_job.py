"""Sandboxed job of ``strict_check``: payload ``{"ks": [...], "device": "cuda" | "cpu"}``, answer
``{"choices": {K: {"variant", "errors"}}}`` (``cpu`` runs under the Triton interpreter)."""

from __future__ import annotations

import os
from dataclasses import asdict

from qimeng.core.sandbox import job_main


def handle(payload: dict) -> dict:
    device = payload["device"]
    os.environ["QIMENG_WORK_DIR"] = os.getcwd()  # the job's private directory holds the template modules
    if device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    from qimeng.kernels.engine.templates.gemm_tuning import strict_precision

    size = 64 if device == "cpu" else 256  # the interpreter is slow; on the GPU, the harness-scale check
    choices = {}
    for k in payload["ks"]:
        variant, errors = strict_precision(int(k), device, m=size, n=size)
        choices[str(k)] = {"variant": variant, "errors": [asdict(e) for e in errors]}
    return {"choices": choices}


if __name__ == "__main__":
    job_main(handle)
