"""A tiny job module for the sandbox tests (run as ``python -m sandbox_jobs`` inside the sandbox)."""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
import time

from qimeng.core.sandbox import job_main


def handle(payload: dict):
    action = payload["action"]
    if action == "echo":
        return {"echo": payload["value"]}
    if action == "forge":  # prints a result-looking line and writes one without the nonce
        print('{"echo": "forged"}')
        for fd in range(3, 64):  # what an attacker would do: write a fake result into every pipe
            try:
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.write(fd, b'{"nonce": "0", "message": {"echo": "forged"}}\n')
            except OSError:
                pass
        return {"echo": "real"}
    if action == "sleep":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(f"child={child.pid}", flush=True)
        time.sleep(60)
    if action == "segfault":
        ctypes.string_at(0)
    if action == "exit0":
        os._exit(0)
    if action == "flood":
        sys.stdout.write("x" * 1_000_000 + "END")
        return {"echo": "flooded"}
    if action == "env":
        return {"env": dict(os.environ), "cwd": os.getcwd()}
    if action == "stream":
        return _stream(payload["n"], payload["pause_s"])
    raise ValueError(action)


def _stream(n: int, pause_s: float):
    for i in range(n):
        time.sleep(pause_s)
        print(f"step {i}", flush=True)
        yield {"i": i}


if __name__ == "__main__":
    job_main(handle)
