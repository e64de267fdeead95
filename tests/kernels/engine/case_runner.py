"""The main loop of the interpreter-check scripts (run in a subprocess with TRITON_INTERPRET=1): each
case named in ``sys.argv[1]`` (a JSON list) through ``run(name, work_dir)``, one JSON line per case; a
case that raises is a failed line and the others still run."""

import json
import sys
import tempfile
from pathlib import Path
from typing import Callable


def run_cases(run: Callable[[str, Path], dict]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in json.loads(sys.argv[1]):
            try:
                result = run(name, Path(tmp))
            except Exception as exc:  # reported as a failed case, the others still run
                result = {"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(result), flush=True)
