"""A fake lock holder: another process holding a lock file exclusively for a while (the GPU in use)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "a") as f:
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A process holding ``path``'s lock exclusively for ``seconds``, returned once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder
