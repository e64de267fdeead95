"""A product of a matrix with its own transpose in the graph (``X @ X.T``, ``X.T @ X``, batched ``Y @ Y.mT``):
the result is symmetric, so the GEMM template computes only the tiles on and above the diagonal and stores each
tile twice, at its place and transposed (the tiles below run no K loop and store nothing). It needs square tiles
(``gemm.symmetric_config``), no split-K, and an epilogue that keeps the symmetry: a function of the product
alone (``Epilogue.of_product_alone``).
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, Node, Ref

IDENTITY_VIEWS = ("aten.expand.default", "aten.view.default", "aten.reshape.default", "aten.alias.default")
TRANSPOSES = ("aten.permute.default", "aten.t.default", "aten.transpose.int")


def _root(graph: Graph, name: str) -> str:
    """``name`` through views that keep its shape (matmul's expand/view of a bmm operand)."""
    nodes = graph.node_names()
    while name in nodes and nodes[name].target in IDENTITY_VIEWS and isinstance(nodes[name].args[0], Ref) \
            and graph.meta(nodes[name].args[0].name).shape == graph.meta(name).shape:
        name = nodes[name].args[0].name
    return name


def _transposed(graph: Graph, name: str) -> str | None:
    """The value ``name`` is the last-two-axes transpose of (through shape-keeping views), else None."""
    node = graph.node_names().get(_root(graph, name))
    if node is None or node.target not in TRANSPOSES or not isinstance(node.args[0], Ref):
        return None
    rank = len(graph.meta(node.name).shape)
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    if node.target == "aten.permute.default" and list(node.args[1]) != swap:
        return None
    if node.target == "aten.transpose.int" and sorted(d % rank for d in node.args[1:3]) != [rank - 2, rank - 1]:
        return None
    return _root(graph, node.args[0].name)


def symmetric_product(graph: Graph, node: Node, a: Ref, b: Ref) -> bool:
    """Whether ``node`` (``a @ b``, a mm or bmm) multiplies a matrix by its own transpose."""
    if node.target not in ("aten.mm.default", "aten.bmm.default"):
        return False
    return _transposed(graph, b.name) == _root(graph, a.name) or _transposed(graph, a.name) == _root(graph, b.name)
