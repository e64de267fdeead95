"""Matrix structure the exported graph shows, rewritten before decomposition (where it is still one node).

- ``diag(d) @ B`` (``torch.diag`` of a vector, then ``matmul``/``mm``) is ``d[:, None] * B`` and
  ``A @ diag(d)`` is ``A * d``: a broadcast multiply, a pointwise kernel, no product at all (the diagonal
  matrix is never made). Exact: the reference adds only zero terms ``0 * B[j, k]`` to ``d[i] * B[i, k]``,
  so the two agree bit for bit on finite values (an infinite or NaN entry of B makes the reference's
  row NaN through ``0 * inf``; the broadcast keeps it finite where ``d`` is not zero).
"""

from __future__ import annotations

import torch
from torch.fx import Node

aten = torch.ops.aten
PRODUCTS = (aten.matmul.default, aten.mm.default)


def _diagonal_vector(value: object) -> Node | None:
    """``d`` when ``value`` is ``diag(d)`` of a vector on the main diagonal, else None."""
    if not isinstance(value, Node) or value.op != "call_function" or value.target is not aten.diag.default:
        return None
    offset = value.args[1] if len(value.args) > 1 else value.kwargs.get("diagonal", 0)
    vector = value.args[0]
    if offset != 0 or not isinstance(vector, Node) or vector.meta["val"].dim() != 1:
        return None
    return vector


def _call(graph: torch.fx.Graph, target, args: tuple, val: torch.Tensor) -> Node:
    node = graph.call_function(target, args)
    node.meta["val"] = val
    return node


def diagonal_products(exported: torch.export.ExportedProgram) -> int:
    """Rewrite every product with a ``diag(vector)`` operand in ``exported`` (in place) as a broadcast
    multiply; the number rewritten."""
    graph = exported.graph_module.graph
    done = 0
    for node in list(graph.nodes):
        if node.op != "call_function" or node.target not in PRODUCTS:
            continue
        a, b = node.args[:2]
        left, right = _diagonal_vector(a), _diagonal_vector(b)
        if left is None and right is None:
            continue
        with graph.inserting_before(node):
            if right is not None:  # A @ diag(d): column j of A scaled by d[j] (A may itself be a diag)
                operands = (a, right)
            else:  # diag(d) @ B: row i of B scaled by d[i] (a vector B: d * B)
                other = b.meta["val"]
                column = left if other.dim() == 1 else _call(graph, aten.unsqueeze.default, (left, -1),
                                                             left.meta["val"].unsqueeze(-1))
                operands = (column, b)
            product = _call(graph, aten.mul.Tensor, operands, node.meta["val"])
        name = node.name
        node.replace_all_uses_with(product)
        graph.erase_node(node)
        product._rename(name)  # the graph signature names its outputs
        for diag in (a, b):
            if isinstance(diag, Node) and diag.target is aten.diag.default and not diag.users:
                graph.erase_node(diag)
        done += 1
    if done:
        exported.graph_module.recompile()
    return done
