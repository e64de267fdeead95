"""A submodule of a problem's ``Model`` as a KernelBench problem of its own (a piece of ``engine/split.py``).

The piece's file is the problem's source with its ``Model``, ``get_inputs`` and ``get_init_inputs``
renamed (identifiers only: ``SMALL`` and every other global still apply), then:

- ``Model``: a subclass of the submodule's class whose constructor builds the problem's ``Model`` and
  adopts the submodule's state (so its parameters have the submodule's own ``state_dict`` names, and
  its ``forward`` is the submodule's);
- ``get_inputs()``: the submodule's arguments in a forward of the problem's ``Model`` (built once per
  device from seed 0 in the mode the problem was recorded in) on the problem's inputs drawn from the
  harness's seed; the first call of the submodule is taken and the rest of the forward skipped, and the
  inputs are drawn again while a forward (data-dependent control flow) does not call it;
- ``get_init_inputs()``: the problem's (the harness passes them to the constructor; a candidate's module
  does not get the ``SMALL`` overrides, the problem's module does).
"""

from __future__ import annotations

import importlib
import io
import tokenize

RENAMED = {"Model": "_QmProblemModel", "get_inputs": "_qm_problem_get_inputs",
           "get_init_inputs": "_qm_problem_get_init_inputs"}
DRAWS = 8  # problem inputs drawn at most, per get_inputs(), until a forward calls the submodule


def renamed(source: str) -> str:
    """``source`` with the identifiers of ``RENAMED`` renamed (not attributes, strings or comments)."""
    lines = source.splitlines(keepends=True)
    sites: list[tuple[int, int, int, str]] = []
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        attribute = previous is not None and previous.string == "."
        if tok.type == tokenize.NAME and tok.string in RENAMED and not attribute:
            sites.append((tok.start[0] - 1, tok.start[1], tok.end[1], RENAMED[tok.string]))
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            previous = tok
    for row, start, end, name in reversed(sites):  # right to left: earlier columns stay valid
        lines[row] = lines[row][:start] + name + lines[row][end:]
    return "".join(lines)


def class_expression(cls: type, problem_module: str) -> tuple[str, str] | None:
    """(import line, expression) that names ``cls`` in the piece's file; None when it cannot be named (a class
    made inside a function). A class of the problem file is named by its (renamed) top-level name."""
    qualname = cls.__qualname__
    if "<" in qualname or ("." in qualname and cls.__module__ == problem_module):
        return None
    if cls.__module__ == problem_module:
        return "", RENAMED.get(qualname, qualname)
    try:
        found = importlib.import_module(cls.__module__)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    if found is not cls:
        return None
    return f"import {cls.__module__} as _qm_piece_module", f"_qm_piece_module.{qualname}"


def piece_problem(problem_source: str, path: str, class_import: str, class_expr: str, training: bool) -> str:
    """The source of the piece problem for the submodule at ``path`` (see the module docstring)."""
    return renamed(problem_source).rstrip() + f'''


# ---- qimeng optimize (split): the submodule `{path}` of the problem's Model as a problem of its own ----
import torch as _qm_torch
{class_import}

_QM_PIECE = {path!r}
_QM_TRAINING = {training!r}
_QM_DRAWS = {DRAWS}
_qm_problem_models = {{}}


class _QmRecorded(Exception):
    """Raised once the submodule's arguments are recorded: the rest of the forward is not needed."""


class Model({class_expr}):
    """The submodule `{path}`, with the parameters the problem's constructor gives it."""

    def __init__(self, *init_inputs):
        _qm_torch.nn.Module.__init__(self)
        whole = _QmProblemModel(*init_inputs)
        self.__dict__.update(whole.get_submodule(_QM_PIECE).__dict__)


def _qm_problem_model(device):
    """The problem's Model on ``device``, built once from seed 0 (the harness's random state is left as it is)."""
    key = str(device)
    if key not in _qm_problem_models:
        cuda = [_qm_torch.cuda.current_device()] if device.type == "cuda" else []
        with _qm_torch.random.fork_rng(devices=cuda):
            _qm_torch.manual_seed(0)
            whole = _QmProblemModel(*_qm_problem_get_init_inputs()).to(device)
        _qm_problem_models[key] = whole.train(_QM_TRAINING)
    return _qm_problem_models[key]


def get_inputs():
    """The submodule's arguments in a forward of the problem's Model on the problem's inputs."""
    device = _qm_torch.get_default_device()
    whole = _qm_problem_model(device)
    seen = []

    def record(module, args):
        seen.append([a.detach().clone() if isinstance(a, _qm_torch.Tensor) else a for a in args])
        raise _QmRecorded

    handle = whole.get_submodule(_QM_PIECE).register_forward_pre_hook(record)
    try:
        for _ in range(_QM_DRAWS):
            xs = [x.to(device) if isinstance(x, _qm_torch.Tensor) else x for x in _qm_problem_get_inputs()]
            try:
                with _qm_torch.no_grad():
                    whole(*xs)
            except _QmRecorded:
                return seen[0]
    finally:
        handle.remove()
    raise RuntimeError(f"{{_QM_DRAWS}} forwards of the problem's Model did not call `{{_QM_PIECE}}`")


def get_init_inputs():
    return _qm_problem_get_init_inputs()
'''
