"""Tries to reach into the judge and the harness: their memory and descriptors through /proc. Prints
what it could open, then computes honestly."""

import os

import torch
import torch.nn as nn


def _open_descriptors(pid: int) -> None:
    """Open every descriptor of ``pid`` for writing (its pipes would carry a forged answer)."""
    names = os.listdir(f"/proc/{pid}/fd")
    opened = 0
    for name in names:
        try:
            os.close(os.open(f"/proc/{pid}/fd/{name}", os.O_WRONLY | os.O_NONBLOCK))
            opened += 1
        except OSError as exc:
            last = exc
    if not opened:
        raise last


def _probe() -> None:
    targets = {"harness": os.getppid()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"qimeng.kernels.harness.judge" in open(f"/proc/{pid}/cmdline", "rb").read():
                targets["judge"] = int(pid)
        except OSError:
            pass
    for name, pid in targets.items():
        for what, attempt in (("mem", lambda: open(f"/proc/{pid}/mem", "rb").close()),
                              ("fd", lambda: _open_descriptors(pid))):
            try:
                attempt()
                print(f"PROBE {name} {what}: opened", flush=True)
            except OSError as exc:
                print(f"PROBE {name} {what}: denied ({exc.strerror})", flush=True)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        _probe()

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)
