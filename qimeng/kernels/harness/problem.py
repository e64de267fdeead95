"""Problems in KernelBench format: a file with ``class Model(nn.Module)``, ``get_inputs()`` and
``get_init_inputs()``, plus an optional ``SMALL`` dict of overrides of its global size constants.

:func:`check_problem_source` only parses the file (for the harness process, which imports no torch);
:func:`load_problem` imports it (inside a worker) and checks what the file provides.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from qimeng.core.verdict import BadInput

_SCALARS = (int, float, bool, str, type(None))
_module_ids = itertools.count()


def problem_hash(path: Path | str, small: bool = False) -> str:
    """Content hash of a problem file (sizes differ with ``small``, so it is part of the hash)."""
    digest = hashlib.sha256(Path(path).read_bytes())
    if small:
        digest.update(b"\0small")
    return digest.hexdigest()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the problem file ({exc})") from exc


def check_problem_source(path: Path | str) -> None:
    """Raise BadInput unless the file parses and binds ``Model`` and ``get_inputs`` at top level."""
    path = Path(path)
    source = _read(path)
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise BadInput(f"{path}: syntax error at line {exc.lineno}: {exc.msg}") from exc
    names = _top_level_names(tree)
    for required in ("Model", "get_inputs"):
        if required not in names:
            raise BadInput(f"{path}: the problem defines no `{required}`")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@dataclass
class Problem:
    """A loaded problem: the reference model class and its input factories."""

    path: Path
    module: ModuleType
    model_cls: type
    get_inputs: Callable[[], list]
    get_init_inputs: Callable[[], list]
    hash: str

    def init_inputs(self) -> list:
        """Constructor arguments of Model (and ModelNew)."""
        try:
            args = self.get_init_inputs()
        except Exception as exc:
            raise BadInput(f"{self.path}: get_init_inputs() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(args, (list, tuple)):
            raise BadInput(f"{self.path}: get_init_inputs() returned {type(args).__name__}, not a list")
        return list(args)

    def inputs(self, seed: int, device: str) -> list:
        """Fresh inputs from ``seed`` on ``device``; BadInput unless they are tensors (and scalars)."""
        import torch

        from qimeng.kernels.harness.inputs import moved, on_device

        try:
            values = on_device(self.get_inputs, seed, device)
        except Exception as exc:
            raise BadInput(f"{self.path}: get_inputs() raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(values, (list, tuple)):
            raise BadInput(f"{self.path}: get_inputs() returned {type(values).__name__}, not a list")
        for i, value in enumerate(values):
            if not isinstance(value, (torch.Tensor, *_SCALARS)):
                raise BadInput(f"{self.path}: get_inputs()[{i}] is a {type(value).__name__}, not a tensor")
        if not any(isinstance(v, torch.Tensor) for v in values):
            raise BadInput(f"{self.path}: get_inputs() returned no tensor")
        return moved(list(values), device)

    def build(self, cls: type, seed: int, device: str, mode: str = "eval") -> Any:
        """``cls(*init_inputs)`` built on ``device`` from ``seed`` (the same seed gives the same parameters).

        ``mode``: ``"train"`` leaves the module as its constructor made it (training mode, as benchmark
        suites call it); ``"eval"`` calls ``.eval()``."""
        from qimeng.kernels.harness.inputs import moved, on_device

        args = moved(self.init_inputs(), device)
        model = on_device(lambda: cls(*args), seed, device).to(device)
        return model.eval() if mode == "eval" else model


def import_file(path: Path, prefix: str) -> ModuleType:
    """Import a Python file as a fresh module with a unique name (exceptions propagate)."""
    name = f"{prefix}_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_problem(path: Path | str, small: bool = False) -> Problem:
    """Import a problem file (with its ``SMALL`` overrides when ``small``); BadInput when malformed."""
    import torch

    path = Path(path)
    check_problem_source(path)
    try:
        module = import_file(path, "qimeng_problem")
    except Exception as exc:
        raise BadInput(f"{path}: importing the problem raised {type(exc).__name__}: {exc}") from exc
    if small:
        _apply_small(path, module)
    model_cls = getattr(module, "Model", None)
    if not (isinstance(model_cls, type) and issubclass(model_cls, torch.nn.Module)):
        raise BadInput(f"{path}: `Model` is not a torch.nn.Module subclass")
    get_inputs = getattr(module, "get_inputs", None)
    if not callable(get_inputs):
        raise BadInput(f"{path}: `get_inputs` is not callable")
    get_init_inputs = getattr(module, "get_init_inputs", lambda: [])
    if not callable(get_init_inputs):
        raise BadInput(f"{path}: `get_init_inputs` is not callable")
    return Problem(path, module, model_cls, get_inputs, get_init_inputs, problem_hash(path, small))


def _apply_small(path: Path, module: ModuleType) -> None:
    overrides = getattr(module, "SMALL", None)
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        raise BadInput(f"{path}: SMALL is a {type(overrides).__name__}, not a dict")
    for name, value in overrides.items():
        if not hasattr(module, name):
            raise BadInput(f"{path}: SMALL overrides `{name}`, which the problem does not define")
        setattr(module, name, value)
