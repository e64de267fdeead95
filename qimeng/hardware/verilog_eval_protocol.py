"""VerilogEval v2's own classification of one sample (its ``scripts/sv-iv-analyze``), replicated line for line.

The benchmark's Makefile writes one log per sample: the output of ``iverilog -Wall -Winfloop
-Wno-timescale -g2012 -s tb -o BIN sample test ref``, then that of ``timeout 30 ./BIN`` (``vvp``
without ``-n``), then ``TIMEOUT`` if the timeout struck; stdout and stderr together (``&>``). The
analysis reads the log line by line and gives each sample one letter; only ``.`` passes.
"""

from __future__ import annotations

import re

from qimeng.core.verdict import Status

RUN_TIMEOUT_S = 30.0  # the Makefile's `timeout 30`

# VerilogEval's letters and what they mean (sv-iv-analyze).
CODES: dict[str, str] = {
    ".": "pass", "S": "syntax error", "e": "explicit cast required", "0": "sized numeric constant error",
    "n": "no sensitivities warning", "w": "declared as wire", "m": "unknown module type",
    "p": "unable to bind wire/reg", "c": "unable to bind wire/reg `clk'", "C": "compiler error",
    "T": "timeout", "r": "async reset found", "R": "runtime error",
}
_COMPILE_CODES = frozenset("Se0nwmpcC")
_MISMATCH_LINE = re.compile(r"^Mismatches: (\d+) in \d+ samples$")
# Lines that end the scan with a letter, in the order sv-iv-analyze tests them.
_BREAKS: tuple[tuple[str, str], ...] = (
    ("error: This assignment requires an explicit cast", "e"),
    ("error: Sized numeric constant must have a size greater than zero", "0"),
    ("warning: always_comb process has no sensitivities", "n"),
    ("found no sensitivities so it will never trigger", "n"),
    ("is declared here as wire", "w"),
    ("Unknown module type", "m"),
)


def classify_log(log: str, verilog: str) -> tuple[str, int]:
    """VerilogEval's letter for a sample from its log and its source, and the mismatch count it read."""
    code, error_c, error_p, no_mismatch, mismatches = "?", False, False, False, 0
    for line in log.splitlines():
        if "syntax error" in line:
            code = "S"
            break
        if "error" in line:
            error_c = True
        hit = next((letter for text, letter in _BREAKS if text in line), None)
        if hit is not None:
            code = hit
            break
        if "Unable to bind wire/reg" in line:
            error_p = True
        if "Unable to bind wire/reg/memory `clk'" in line:
            code = "c"
            break
        if "TIMEOUT" in line:
            code = "T"
            break
        match = _MISMATCH_LINE.match(line)
        if match:
            if int(match.group(1)) == 0:
                no_mismatch = True
            else:
                mismatches = int(match.group(1))
    if code == "?" and error_p:
        code = "p"
    if code == "?" and error_c:
        code = "C"
    if code == "?" and no_mismatch:
        code = "."
    if code == "?":
        resets = ("posedge reset", "negedge reset", "posedge r)")
        code = "r" if any(any(r in line for r in resets) for line in verilog.splitlines()) else "R"
    return code, mismatches


def status_of(code: str, mismatches: int) -> Status:
    """Our status for a VerilogEval letter (the letter itself is kept with the sample)."""
    if code == ".":
        return Status.OK
    if code in _COMPILE_CODES:
        return Status.COMPILE_ERROR
    if code == "T":
        return Status.TIMEOUT
    return Status.INCORRECT if mismatches else Status.RUNTIME_ERROR
