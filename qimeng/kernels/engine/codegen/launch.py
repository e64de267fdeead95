"""Kernel launches in ``model_new.py``: Triton's JIT path once, then the compiled kernel directly.

A launch through ``kernel[grid](...)`` binds and specialises every argument and looks the kernel up in
Triton's cache: about 20 us of host time per launch on an H100 host, more than a small kernel runs.
The generated launcher takes that path on its first call (which compiles), keeps the compiled kernel,
and afterwards calls its launcher directly (a few us). The direct path is only taken when it is
exactly what the JIT would do:

- the compiled kernel was specialised for 16-byte aligned pointers, and every pointer is aligned now
  (the only other runtime arguments are the sizes of dynamic dimensions, marked ``do_not_specialize``
  so that one binary serves every size; the rest is compiled in, and the module's guard pins shapes,
  strides and dtypes);
- pointers go to the launcher as integers, which skips its per-pointer driver query: the module's
  guard and parameter checks already put every tensor on the CUDA device;
- the kernel is kept per current CUDA device, the device Triton launches on;
- no Triton launch hook is installed (profilers such as Proton install them: the JIT calls them);
- this Triton exposes the compiled-kernel API the direct path was written for (3.x with ``knobs``);
  under the interpreter, or with any other API, every launch takes the JIT path.

The first call's JIT launches find their kernels compiled already: ``ahead.py`` compiles them all
before it, from threads.
"""

from __future__ import annotations

RUNTIME = '''
def _qm_launch_api():
    """(enter hooks, exit hooks, current device, current stream) of this Triton, or None: JIT path only."""
    if _qm_os.environ.get("TRITON_INTERPRET") == "1":
        return None
    try:
        from triton import knobs
        from triton.runtime import driver

        enter, leave = knobs.runtime.launch_enter_hook, knobs.runtime.launch_exit_hook
        device, stream = driver.active.get_current_device, driver.active.get_current_stream
    except (ImportError, AttributeError, RuntimeError):
        return None
    if not (isinstance(getattr(enter, "calls", None), list) and isinstance(getattr(leave, "calls", None), list)):
        return None
    return enter, leave, device, stream


_QM_API = _qm_launch_api()
_QM_COMPILED = {}  # (kernel name, CUDA device) -> (launcher, function handle, packed metadata)


def _qm_direct(name):
    """The compiled kernel to launch directly on the current device (None: take the JIT path)."""
    if _QM_API is None or _QM_API[0].calls or _QM_API[1].calls:
        return None
    return _QM_COMPILED.get((name, _QM_API[2]()))


def _qm_keep(name, compiled, tensors):
    """Keep a kernel that the JIT compiled for 16-byte aligned pointers, for the direct path."""
    if _QM_API is None or not hasattr(compiled, "packed_metadata") or not hasattr(compiled, "function"):
        return
    if any(t.data_ptr() % 16 for t in tensors):
        return
    _QM_COMPILED[(name, _QM_API[2]())] = (compiled.run, compiled.function, compiled.packed_metadata)
'''


def launch_lines(kernel: str, grid: str, tensors: list[str], consts: dict[str, int], num_warps: int,
                 num_stages: int, indent: str = "    ") -> list[str]:
    """Python lines launching ``kernel`` over ``grid`` (a 1-D expression) with pointer arguments
    ``tensors`` and constexpr values ``consts`` (in the kernel's parameter order)."""
    args = ", ".join(tensors)
    ptrs = [f"_qm_p{i}" for i in range(len(tensors))]
    const_values = "".join(f", {v}" for v in consts.values())
    const_kwargs = "".join(f", {k}={v}" for k, v in consts.items())
    return [
        f"{indent}_qm_k = _qm_direct({kernel!r})",
        f"{indent}{', '.join(ptrs)}, = {', '.join(f'{t}.data_ptr()' for t in tensors)},",
        f"{indent}if _qm_k is not None and not ({' | '.join(ptrs)}) % 16:",
        f"{indent}    _qm_k[0]({grid}, 1, 1, _QM_API[3](_QM_API[2]()), _qm_k[1], _qm_k[2], None, None, None, "
        f"{', '.join(ptrs)}{const_values})",
        f"{indent}else:",
        f"{indent}    _qm_keep({kernel!r}, {kernel}[({grid},)]({args}{const_kwargs}, num_warps={num_warps}, "
        f"num_stages={num_stages}), ({args},))",
    ]
