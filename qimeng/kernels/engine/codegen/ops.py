"""Generated kernels as ``torch.library`` custom ops, and the guard-miss fallback, in ``model_new.py``.

Each rendered kernel gets a run function (allocate the outputs, launch) and a fake one (the outputs'
shapes and dtypes only), registered together as the custom op ``<namespace>::<kernel name>``. The
namespace is a hash of the generated code, so two files loaded in one process never collide, and the
same file loaded twice reuses its ops. Eager calls take the run function directly (no dispatcher
cost); under ``torch.compile``, ``torch.export`` or any tracing (tensor subclasses: fake, functional)
the call goes through the op, so those see one opaque node per kernel with a correct fake
implementation. A call the kernels were not generated for runs ``Model.forward`` and warns once per
shape (``warnings.warn``).
"""

from __future__ import annotations

import hashlib
import re

from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.ir.kernel import Kernel

NAMESPACE_LINE = '_QM_NS = "{}"'
_NAMESPACE_RE = re.compile(r'^_QM_NS = "[^"]*"$', re.M)

RUNTIME = '''
_QM_TAGS = (getattr(torch.Tag, "needs_exact_strides", torch.Tag.needs_fixed_stride_order),)


def _qm_op(name, run, fake):
    """``run`` as the custom op ``_QM_NS::name`` (fake impl ``fake``) for tracers; eager calls run it."""
    try:
        op = torch.library.custom_op(f"{_QM_NS}::{name}", run, mutates_args=(), tags=_QM_TAGS)
        op.register_fake(fake)
    except RuntimeError:  # already registered: this same file was loaded before in this process
        op = getattr(getattr(torch.ops, _QM_NS), name)

    def call(*args):
        if type(args[0]) is torch.Tensor and not torch.compiler.is_compiling():
            return run(*args)
        return op(*args)

    return call


_QM_MISSES = set()


def _qm_fallback(model, args):
    """``Model.forward`` for a call the kernels were not generated for; warns once per shape."""
    key = tuple((tuple(a.shape), a.dtype, a.device.type, a.requires_grad) if isinstance(a, torch.Tensor)
                else repr(a) for a in args) + (model.training,)
    if key not in _QM_MISSES:
        _QM_MISSES.add(key)
        shapes = ", ".join(f"{list(k[0])} {k[1]} on {k[2]}" if isinstance(k, tuple) else k for k in key[:-1])
        _qm_warnings.warn(f"qimeng ModelNew: no generated kernels for this call ({shapes}; "
                          f"training={model.training}): running the PyTorch forward (see report.md)", stacklevel=3)
    return Model.forward(model, *args)
'''


def wrapper_source(kernel: Kernel, launcher: str) -> str:
    """The run and fake functions of one rendered kernel and their registration as a custom op."""
    name = kernel.name
    ins = [f"i{k}" for k in range(len(kernel.inputs))]
    outs = [f"o{k}" for k in range(len(kernel.outputs))]
    typed = "".join(f"{i}: torch.Tensor, " for i in ins)
    allocs = [f"    {o} = torch.empty({b.shape!r}, dtype=torch.{b.dtype}, device=dev)"
              if b.stride == contiguous_strides(b.shape) else
              f"    {o} = torch.empty_strided({b.shape!r}, {b.stride!r}, dtype=torch.{b.dtype}, device=dev)"
              for o, b in zip(outs, kernel.outputs)]
    return "\n".join(
        [f"def _qm_run_{name}({typed}dev: torch.device) -> list[torch.Tensor]:"] + allocs
        + [f"    {launcher}({', '.join(ins + outs)})", f"    return [{', '.join(outs)}]", "", "",
           f"def _qm_fake_{name}({''.join(i + ', ' for i in ins)}dev):"] + allocs
        + [f"    return [{', '.join(outs)}]", "", "",
           f"_qm_call_{name} = _qm_op({name!r}, _qm_run_{name}, _qm_fake_{name})"])


def call_line(kernel: Kernel, indent: str = "        ") -> str:
    """The forward's line running one kernel unit (its buffers by their names in the forward)."""
    outs = "".join(f"{b.name}, " for b in kernel.outputs)
    ins = "".join(f"{b.name}, " for b in kernel.inputs)
    return f"{indent}{outs}= _qm_call_{kernel.name}({ins}_qm_dev)"


def with_namespace(source: str) -> str:
    """``source`` with its ``_QM_NS`` line set to a hash of everything else in it."""
    blank = _NAMESPACE_RE.sub(NAMESPACE_LINE.format(""), source)
    digest = hashlib.sha256(blank.encode()).hexdigest()[:16]
    return _NAMESPACE_RE.sub(NAMESPACE_LINE.format(f"qm_{digest}"), blank)
