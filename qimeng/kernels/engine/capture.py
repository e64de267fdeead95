"""Capture a module's forward as a graph of core ATen operators with shapes, dtypes and strides.

``torch.export`` traces the forward; ``run_decompositions`` lowers it to core ATen, with softmax,
log-softmax, the norms, var/std and logsumexp decomposed further into reductions and pointwise ops
(the kernel lowering fuses those back together); ``F.scaled_dot_product_attention`` stays one node. Parameters and buffers become graph inputs named by
their ``state_dict`` keys. A forward that updates buffers (batch norm's running statistics in training
mode) keeps the new values as graph values with the buffer they go to (``Graph.mutations``); the
module is captured in the mode it is in (``Graph.training``), and ``Graph.mode_specific`` says whether
the other mode computes something else. A step counter the forward only increments
(``num_batches_tracked += 1``, its new value read by nothing else) leaves the graph for
``Graph.increments``: ``model_new.py`` adds one to all of them in place in one call, not a kernel each.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

import torch

from qimeng.kernels.engine.capture_rewrites import exportable
from qimeng.kernels.engine.capture_structure import diagonal_products

aten = torch.ops.aten

# Decomposed beyond core ATen so that the pieces (reductions, pointwise) can be fused.
EXTRA_DECOMPOSITIONS = (
    aten._softmax, aten._log_softmax, aten.native_layer_norm, aten.native_group_norm,
    aten.var.correction, aten.std.correction, aten.logsumexp, aten.mse_loss, aten.huber_loss,
    aten.smooth_l1_loss, aten.softplus, aten.hardswish, aten.hardsigmoid, aten.mish, aten.silu,
    aten.elu, aten.hardtanh, aten.leaky_relu, aten.nll_loss_forward, aten.cosine_similarity,
    aten.norm.ScalarOpt_dim, aten.linalg_vector_norm, aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_functional,
)
# Kept whole: the vendor kernel (flash / memory-efficient attention) is the fallback, and one node is what
# the attention template (templates/attention_plan.py) takes.
KEPT_WHOLE = (aten.scaled_dot_product_attention.default,)


class CaptureError(Exception):
    """The module cannot be captured as a static graph (the message says why)."""


@dataclass(frozen=True)
class TensorMeta:
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str  # torch dtype name without the "torch." prefix

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * getattr(torch, self.dtype).itemsize


@dataclass(frozen=True)
class Ref:
    """A reference to a graph value (an input or a node's output) by name."""

    name: str


@dataclass
class GraphInput:
    name: str
    kind: str  # "user", "parameter", "buffer", "constant" (a plain tensor attribute) or "literal" (made in forward)
    target: str  # attribute path (state_dict key) of parameters/buffers/constants, the argument index of user
    # inputs, the values (a flat tuple literal) of a literal
    meta: TensorMeta


@dataclass
class Node:
    name: str
    target: str  # e.g. "aten.add.Tensor", or "getitem"
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    meta: TensorMeta | tuple[TensorMeta | None, ...] | None
    fn: Any = field(default=None, repr=False, compare=False)  # the callable (OpOverload) itself


@dataclass
class Graph:
    inputs: list[GraphInput]
    nodes: list[Node]
    outputs: list[Any]  # Refs (or constants) in forward-output order
    single_output: bool  # forward returns one tensor rather than a tuple
    user_args: list[Any]  # forward arguments: TensorMeta for tensors, the value otherwise
    training: bool = False  # the mode the module was captured in
    mode_specific: bool = False  # the other mode computes something else (batch norm, dropout)
    mutations: list[tuple[Ref, str]] = field(default_factory=list)  # (new value, buffer's state_dict key)
    increments: list[str] = field(default_factory=list)  # buffers (state_dict keys) incremented by one in place

    def node(self, name: str) -> Node:
        return self._by_name()[name]

    def _by_name(self) -> dict[str, Node]:
        cache = getattr(self, "_index", None)
        if cache is None:
            cache = {n.name: n for n in self.nodes}
            self._index = cache
        return cache

    def position(self, name: str) -> int:
        """The index of node ``name`` in graph (topological) order."""
        cache = getattr(self, "_positions", None)
        if cache is None:
            cache = self._positions = {n.name: i for i, n in enumerate(self.nodes)}
        return cache[name]

    def node_names(self) -> dict[str, Node]:
        """The nodes by name (graph inputs are not nodes)."""
        return self._by_name()

    def meta(self, name: str) -> TensorMeta:
        inputs = getattr(self, "_inputs_by_name", None)
        if inputs is None:
            inputs = self._inputs_by_name = {i.name: i for i in self.inputs}
        if name in inputs:
            return inputs[name].meta
        meta = self.node(name).meta
        assert isinstance(meta, TensorMeta), f"{name} is not a single tensor"
        return meta

    def users(self) -> dict[str, list[str]]:
        """Who reads each value (node names, "<output>" for outputs and buffer updates); computed once."""
        cache = getattr(self, "_users", None)
        if cache is None:
            cache = self._users = self._compute_users()
        return cache

    def _compute_users(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {i.name: [] for i in self.inputs}
        for n in self.nodes:
            out.setdefault(n.name, [])
            for r in refs_in(n.args) + refs_in(list(n.kwargs.values())):
                out.setdefault(r.name, []).append(n.name)
        for r in refs_in(self.outputs) + refs_in([value for value, _ in self.mutations]):
            out.setdefault(r.name, []).append("<output>")
        return out

    def __str__(self) -> str:
        lines = [f"input {i.name}: {i.kind} {i.target} {list(i.meta.shape)} {i.meta.dtype}" for i in self.inputs]
        for n in self.nodes:
            args = ", ".join(_fmt(a) for a in n.args)
            kw = "".join(f", {k}={_fmt(v)}" for k, v in n.kwargs.items())
            shape = f"{list(n.meta.shape)} {n.meta.dtype}" if isinstance(n.meta, TensorMeta) else "(multi)"
            lines.append(f"{n.name} = {n.target}({args}{kw})  # {shape}")
        lines.append(f"return {', '.join(_fmt(o) for o in self.outputs)}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return repr(value)


def refs_in(value: Any) -> list[Ref]:
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in refs_in(v)]
    return []


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _meta_of(value: Any) -> TensorMeta | tuple | None:
    if isinstance(value, torch.Tensor):
        return TensorMeta(tuple(int(s) for s in value.shape), tuple(int(s) for s in value.stride()),
                          dtype_name(value.dtype))
    if isinstance(value, (list, tuple)):
        return tuple(_meta_of(v) for v in value)
    return None


def _convert_arg(value: Any) -> Any:
    if isinstance(value, torch.fx.Node):
        return Ref(value.name)
    if isinstance(value, (list, tuple)):
        return type(value)(_convert_arg(v) for v in value)
    return value


def decomposition_table() -> dict:
    from torch._decomp import get_decompositions

    table = dict(torch.export.default_decompositions())
    table.update(get_decompositions(list(EXTRA_DECOMPOSITIONS)))
    for op in KEPT_WHOLE:
        table.pop(op, None)
    return table


def capture(model: torch.nn.Module, args: list[Any] | tuple[Any, ...], mode_specific: bool | None = None) -> Graph:
    """Trace ``model(*args)`` in its current mode to a core-ATen graph. Raises CaptureError when it is
    not a static graph. The module's buffers are left as they were (the example call and the export
    run on a copy of its state). ``mode_specific``: ``Graph.mode_specific`` when already known (the same
    module captured at other input sizes), which spares the export in the other mode."""
    args = tuple(args)
    saved = [(b, b.clone()) for b in model.buffers()]
    try:
        with torch.no_grad(), exportable(model):
            example_out = model(*args)  # its errors propagate as they are (e.g. no meta kernel for an op)
        try:
            exported = _export(model, args)
            operators = _operators(exported)  # before decomposition: compared with the other mode's below
            diagonal_products(exported)  # diag(d) @ B as a broadcast multiply, while diag is one node
            exported = exported.run_decompositions(decomposition_table())
            if mode_specific is None:
                mode_specific = (updates_running_statistics(model, exported.graph_signature.buffers_to_mutate.values())
                                 or differs_in_other_mode(model, args, operators))
        except Exception as exc:  # torch raises many types here; the reason goes to the report
            raise CaptureError(f"torch.export failed: {_first_line(exc)}") from exc
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)
    signature = exported.graph_signature
    if signature.user_inputs_to_mutate:
        raise CaptureError("the forward mutates its inputs")
    kinds = {}
    for spec in signature.input_specs:
        kind = spec.kind.name
        if kind not in ("USER_INPUT", "PARAMETER", "BUFFER", "CONSTANT_TENSOR"):
            raise CaptureError(f"unsupported graph input kind {kind}")
        if kind == "CONSTANT_TENSOR" and (not spec.target or spec.target.split(".")[-1].startswith("lifted_tensor")):
            kinds[spec.arg.name] = ("literal", _literal(exported.constants.get(spec.target)))
            continue
        kinds[spec.arg.name] = ({"USER_INPUT": "user", "CONSTANT_TENSOR": "constant"}.get(kind, kind.lower()),
                                spec.target)
    inputs, nodes, outputs = [], [], []
    user_position = 0
    for fx_node in exported.graph.nodes:
        val = fx_node.meta.get("val")
        if fx_node.op == "placeholder":
            kind, target = kinds[fx_node.name]
            meta = _meta_of(val)
            if kind == "user":
                target = str(user_position)
                user_position += 1
            if not isinstance(meta, TensorMeta):
                if fx_node.users:
                    raise CaptureError(f"non-tensor input {fx_node.name} is used symbolically")
                continue  # specialised into the graph (the generated guard checks its value)
            inputs.append(GraphInput(fx_node.name, kind, str(target), meta))
        elif fx_node.op == "call_function":
            fn, node_args = fx_node.target, _convert_arg(tuple(fx_node.args))
            if fn is aten._local_scalar_dense.default:  # its value would steer the graph: not static
                raise CaptureError("the forward reads a tensor's value into Python (.item() / .tolist()) and "
                                   "computes with it")
            if fn is torch.ops.qimeng.recurrent.default:  # back to the ATen recurrent op (a PyTorch call)
                kind, state = node_args[0], node_args[2]
                fn = getattr(aten, kind).input
                node_args = (node_args[1], state if kind == "lstm" else state[0]) + node_args[3:]
            target = "getitem" if fn is operator.getitem else str(fn)
            nodes.append(Node(fx_node.name, target, node_args, {k: _convert_arg(v) for k, v in fx_node.kwargs.items()},
                              _meta_of(val), fn))
        elif fx_node.op == "output":
            values = list(_convert_arg(fx_node.args[0]))
            mutations = [(values[i], spec.target) for i, spec in enumerate(signature.output_specs)
                         if spec.kind.name == "BUFFER_MUTATION"]
            outputs = [values[i] for i, spec in enumerate(signature.output_specs) if spec.kind.name != "BUFFER_MUTATION"]
        else:
            raise CaptureError(f"unsupported fx node {fx_node.op} {fx_node.target}")
    user_args = [_meta_of(a) if isinstance(a, torch.Tensor) else a for a in args]
    return _fold_increments(Graph(inputs, nodes, outputs, isinstance(example_out, torch.Tensor), user_args,
                                  training=model.training, mode_specific=mode_specific, mutations=mutations))


def _fold_increments(graph: Graph) -> Graph:
    """``graph`` with its buffer updates ``buffer = buffer + 1`` (an integer counter, the new value read by
    nothing but the update) taken out of the nodes and the mutations, into ``increments``."""
    buffers = {i.name: i.target for i in graph.inputs if i.kind == "buffer"}
    users, by_name = graph.users(), graph.node_names()
    folded: set[str] = set()
    for value, target in graph.mutations:
        node = by_name.get(value.name)
        if (node is not None and node.target == "aten.add.Tensor" and not node.kwargs and len(node.args) == 2
                and isinstance(node.args[0], Ref) and buffers.get(node.args[0].name) == target
                and type(node.args[1]) is int and node.args[1] == 1 and users[value.name] == ["<output>"]
                and isinstance(node.meta, TensorMeta) and not node.meta.dtype.startswith(("float", "complex", "bool"))):
            folded.add(value.name)
    if not folded:
        return graph
    return replace(graph, nodes=[n for n in graph.nodes if n.name not in folded],
                   mutations=[(v, t) for v, t in graph.mutations if v.name not in folded],
                   increments=[t for v, t in graph.mutations if v.name in folded])


LITERAL_LIMIT = 64  # elements of a tensor made inside forward that the generated code may embed


def _literal(value: Any) -> str:
    """The values of a small tensor made inside forward (a lifted constant), as a Python tuple literal."""
    if not isinstance(value, torch.Tensor) or value.numel() > LITERAL_LIMIT:
        raise CaptureError(f"a tensor of more than {LITERAL_LIMIT} elements is created inside forward")
    if value.is_meta:  # its values are not known here: capture_problem captures again on real tensors
        raise ValueError("a tensor created inside forward has no values on the meta device")
    return repr(tuple(value.flatten().tolist()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _export(model: torch.nn.Module, args: tuple[Any, ...]) -> torch.export.ExportedProgram:
    with warnings.catch_warnings(), exportable(model):
        warnings.simplefilter("ignore")
        return torch.export.export(model, args, strict=False)


def _operators(exported: torch.export.ExportedProgram) -> tuple[list[str], bool]:
    """The operators of an export with their arguments (dropout keeps its operator and changes its
    ``train`` argument), and whether it mutates buffers (running statistics)."""
    targets = [f"{n.target}{n.args}{n.kwargs}" for n in exported.graph.nodes if n.op == "call_function"]
    return targets, bool(exported.graph_signature.buffers_to_mutate)


def updates_running_statistics(model: torch.nn.Module, mutated: Iterable[str]) -> bool:
    """Does the forward, in training mode, update a batch norm's running statistics (``mutated``: the
    buffers the export writes)? Then eval mode computes something else (the running statistics, no
    update), and no export in the other mode is needed to tell (a second export of a deep network)."""
    if not model.training:
        return False
    for name in mutated:
        owner, _, buffer = name.rpartition(".")
        try:
            module = model.get_submodule(owner)
        except AttributeError:
            continue
        if (buffer in ("running_mean", "running_var") and getattr(module, "track_running_stats", False)
                and isinstance(module, torch.nn.modules.batchnorm._NormBase)):
            return True
    return False


def differs_in_other_mode(model: torch.nn.Module, args: tuple[Any, ...],
                          operators: tuple[list[str], bool]) -> bool:
    """Does ``model`` compute something else in the other mode (training vs eval) than in the one whose
    export gave ``operators``? True when the other mode's export fails."""
    mode = model.training
    model.train(not mode)
    try:
        return _operators(_export(model, args)) != operators
    except Exception:  # noqa: BLE001  (an export that fails in the other mode: assume the modes differ)
        return True
    finally:
        model.train(mode)
