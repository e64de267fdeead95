"""Strict fp32 on the target, measured: 3xTF32's error against a float64 product at each K of the graph.

``measure_strict`` runs ``gemm_tuning.strict_precision`` for each K in one sandboxed job
(``strict_check_job``: the template's kernels are generated code) and answers, per K, the variant the
strict policy may use (``tf32x3`` where it meets 1e-4 against float64, or is at least as accurate as
plain fp32; else ``ieee``) with the measured errors. A job that fails answers nothing: the policy
then proposes both variants and the harness's verification decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.core.sandbox import run_job

JOB_MODULE = "qimeng.kernels.engine.templates.strict_check_job"


@dataclass(frozen=True)
class StrictChoice:
    variant: str  # "tf32x3" or "ieee"
    errors: tuple[dict, ...]  # PolicyError fields of each variant measured

    def describe(self, k: int) -> str:
        worst = ", ".join(f"{e['precision']} {e['tol_ratio']:.3g}x tolerance" for e in self.errors)
        return f"K={k}: {self.variant} ({worst} vs float64)"


def measure_strict(ks: list[int], device: str, timeout_s: float = 300.0) -> tuple[dict[int, StrictChoice], str]:
    """The strict variant per K measured on ``device`` (``cpu``: under the Triton interpreter, where TF32 is
    not emulated), and an error line ("" when the job answered)."""
    if not ks:
        return {}, ""
    result = run_job(JOB_MODULE, {"ks": sorted(set(ks)), "device": device}, timeout_s=timeout_s)
    if result.payload is None or "choices" not in result.payload:
        return {}, f"strict fp32 check {result.describe_exit()}: {result.stderr[-300:]}"
    return {int(k): StrictChoice(v["variant"], tuple(v["errors"])) for k, v in result.payload["choices"].items()}, ""
