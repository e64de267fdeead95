"""Channels-last layout (the ``ChannelsLast`` step): which values of a plan are laid out NHWC.

A vendor 2-D convolution (``aten.convolution``, cuDNN on the GPU) of ``Schedule.channels_last`` runs on
channels-last operands, as torch.compile runs it: ``emit`` converts its weight once (cached) and its
activation when it is not channels-last already. Around it the layout spreads only where no copy is
needed to undo it:

- the convolution's output stays NHWC when only generated kernels (their index math follows the strides
  they are given) and channels-last convolutions read it; otherwise it goes back to its captured strides
  right after the call;
- a 4-D kernel output is written NHWC when only kernels and channels-last convolutions (as their input)
  read it, and it feeds such a convolution or its kernel reads an NHWC value of its shape.

Graph outputs and values read by any other PyTorch call keep their captured layout, so what the
forward returns is laid out as the reference's.
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, Node, Ref, TensorMeta, refs_in
from qimeng.kernels.engine.steps import Schedule

CONV = "aten.convolution.default"
FLOAT_DTYPES = ("float32", "float16", "bfloat16")


def nhwc_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The strides of a channels-last ``[N, C, H, W]`` tensor (PyTorch's ``channels_last``)."""
    n, c, h, w = (max(s, 1) for s in shape)
    return (h * w * c, 1, w * c, c)


def channels_last_convs(graph: Graph) -> list[str]:
    """The 2-D convolutions (4-D input and weight, floating point) a channels-last layout applies to."""
    out = []
    for node in graph.nodes:
        if node.target != CONV or not isinstance(node.meta, TensorMeta) or node.meta.dtype not in FLOAT_DTYPES:
            continue
        x, w = node.args[0], node.args[1]
        if isinstance(x, Ref) and isinstance(w, Ref) and len(graph.meta(x.name).shape) == 4 \
                and len(graph.meta(w.name).shape) == 4:
            out.append(node.name)
    return out


def active_convs(graph: Graph, schedule: Schedule) -> frozenset[str]:
    """The schedule's channels-last convolutions that stay vendor calls (not computed by a template)."""
    templated = dict(schedule.templates)
    return frozenset(n for n in schedule.channels_last if n not in templated and n in set(channels_last_convs(graph)))


def nhwc_values(graph: Graph, convs: frozenset[str], kernel_nodes: set[str], kernel_outputs: list[str],
                group_reads: dict[str, set[str]]) -> dict[str, tuple[int, ...]]:
    """The values laid out NHWC (name -> strides) around the channels-last ``convs``: ``kernel_nodes`` are
    the nodes computed by kernels, ``kernel_outputs`` the values they write (graph order) and
    ``group_reads`` what the kernel writing each of them reads."""
    if not convs:
        return {}
    users = graph.users()

    def kernel_read_only(name: str, conv_input_ok: bool) -> bool:
        readers = users.get(name, [])
        return bool(readers) and all(u in kernel_nodes or (conv_input_ok and _conv_input(graph, convs, u, name))
                                     for u in readers)

    out: dict[str, tuple[int, ...]] = {}
    for name in convs:
        if kernel_read_only(name, conv_input_ok=True):
            out[name] = nhwc_strides(graph.meta(name).shape)
    order = {n.name: i for i, n in enumerate(graph.nodes)}
    for name in sorted(kernel_outputs, key=order.__getitem__):
        meta = graph.meta(name)
        if len(meta.shape) != 4 or not kernel_read_only(name, conv_input_ok=True):
            continue
        feeds_conv = any(_conv_input(graph, convs, u, name) for u in users.get(name, []))
        reads_nhwc = any(r in out and graph.meta(r).shape == meta.shape for r in group_reads.get(name, ()))
        if feeds_conv or reads_nhwc:
            out[name] = nhwc_strides(meta.shape)
    return out


def _conv_input(graph: Graph, convs: frozenset[str], user: str, name: str) -> bool:
    """Is ``name`` the activation (and only that) of the channels-last convolution ``user``?"""
    if user not in convs:
        return False
    node: Node = graph.node(user)
    return node.args[0] == Ref(name) and all(r.name != name for r in refs_in(list(node.args[1:])))
