"""The ``CudaGraph`` step's run time, as source text for ``model_new.py``: the generated forward replayed
from a CUDA graph, so that a launch-bound forward (hundreds of small kernels and vendor calls, a decode
product) costs one graph launch instead of one host round trip per kernel.

``_qm_graphed(module, args)`` runs ``module._qm_forward(*args)``:

- per argument layout (shapes, strides, dtypes, devices) one graph, captured at the first call: two
  warm-up calls on a side stream (Triton compiles, cuBLAS and cuDNN pick their algorithms), then the
  capture, on private copies of the arguments (the graph's inputs); the module's buffers are restored
  afterwards, so that the running statistics a training-mode forward updates are updated by the calls
  the caller makes, exactly as often as PyTorch's forward would;
- every call copies its arguments into the graph's inputs, replays it and returns copies of its outputs
  (the graph's own outputs are overwritten by the next replay; a caller may keep what it was given);
- the graph reads parameters and buffers where they were at capture: each call checks that every one
  is still the tensor, at the address, it was (``load_state_dict`` copies in place and keeps them;
  ``.to()``, ``.half()`` or a replaced parameter do not), else it captures again;
- anything the graph cannot hold (an argument that is not a tensor or a plain value, a CPU tensor, a
  forward that synchronises or reads a value into Python, grad mode with an input that asks for
  gradients) runs the forward as it is, without a graph, and an error during capture leaves that layout
  ungraphed for good (``_qm_graphs[key] = None``). At most ``_QM_MAX_GRAPHS`` layouts are kept.

The step is proposed only for graphs without random operators (a replay draws other numbers than the
reference) and is kept only when it measures faster (copying the arguments costs a read and a write of
each: small next to the launches it saves when it is chosen).
"""

from __future__ import annotations

RANDOM_TARGETS = ("bernoulli", "dropout", "rand", "normal", "multinomial", "uniform", "exponential", "poisson")

GRAPHED_RUNTIME = '''
_QM_MAX_GRAPHS = 8


def _qm_graph_key(args):
    key = []
    for a in args:
        if isinstance(a, torch.Tensor):
            if a.device.type != "cuda" or (a.requires_grad and torch.is_grad_enabled()):
                return None
            key.append((tuple(a.shape), a.stride(), a.dtype, a.device))
        elif a is None or isinstance(a, (bool, int, float, str)):
            key.append(a)
        else:
            return None
    return tuple(key)


def _qm_graph_state(module):
    return [(table, name, t, t.data_ptr()) for sub in module.modules() for table in (sub._parameters, sub._buffers)
            for name, t in table.items() if t is not None]


def _qm_graph_current(state):
    return all(table.get(name) is t and t.data_ptr() == ptr for table, name, t, ptr in state)


def _qm_graph_capture(module, args):
    state = _qm_graph_state(module)
    saved = [t.detach().clone() for t in module.buffers()]
    static = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    stream = torch.cuda.Stream(device=static[0].device if static and isinstance(static[0], torch.Tensor) else None)
    stream.wait_stream(torch.cuda.current_stream())
    try:
        with torch.no_grad():
            with torch.cuda.stream(stream):
                for _ in range(2):
                    module._qm_forward(*static)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = module._qm_forward(*static)
    finally:
        with torch.no_grad():
            for t, s in zip(module.buffers(), saved):
                t.copy_(s)
    return graph, static, out, state


def _qm_graph_copy(out):
    if isinstance(out, torch.Tensor):
        return out.clone()
    if isinstance(out, (tuple, list)):
        return type(out)(_qm_graph_copy(o) for o in out)
    return out


def _qm_graphed(module, args):
    key = _qm_graph_key(args)
    graphs = module.__dict__.setdefault("_qm_graphs", {})
    if key is None or (key not in graphs and len(graphs) >= _QM_MAX_GRAPHS) or graphs.get(key, 0) is None:
        return module._qm_forward(*args)
    entry = graphs.get(key)
    if entry is None or not _qm_graph_current(entry[3]):  # none yet, or a parameter or buffer was replaced or moved
        try:
            entry = graphs[key] = _qm_graph_capture(module, args)
        except Exception:
            graphs[key] = None
            torch.cuda.synchronize()
            return module._qm_forward(*args)
    graph, static, out, _ = entry
    with torch.no_grad():
        for s, a in zip(static, args):
            if isinstance(s, torch.Tensor):
                s.copy_(a)
        graph.replay()
    return _qm_graph_copy(out)
'''
