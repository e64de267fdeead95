"""``capture_structure.diagonal_products`` on exported programs: which products it rewrites, and the
rewritten program against the float64 original (a diagonal matrix times a matrix, a batch, a vector, two
diagonals, an offset diagonal left alone)."""

import pytest
import torch

from qimeng.kernels.engine.capture_structure import diagonal_products

aten = torch.ops.aten


class Products(torch.nn.Module):
    def forward(self, d, e, a, b, v):
        return (torch.diag(d) @ b, torch.matmul(a, torch.diag(e)), torch.diag(d) @ v,
                torch.mm(torch.diag(d), torch.diag(d)), torch.diag(e, 1) @ b.new_ones(5, 2))


def _inputs():
    torch.manual_seed(0)
    return torch.randn(5), torch.randn(4), torch.randn(3, 7, 4), torch.randn(5, 6), torch.randn(5)


def _targets(exported) -> list:
    return [n.target for n in exported.graph.nodes if n.op == "call_function"]


def test_diagonal_operands_become_broadcast_multiplies():
    exported = torch.export.export(Products(), _inputs())
    assert diagonal_products(exported) == 4
    targets = _targets(exported)
    # the offset diagonal (diag(e, 1), 5 x 5) stays a product; the others are multiplies
    assert targets.count(aten.matmul.default) + targets.count(aten.mm.default) == 1
    # diag(d) @ diag(d) keeps its left diag (times d); diag(e, 1) keeps its own
    assert targets.count(aten.mul.Tensor) == 4 and targets.count(aten.diag.default) == 2


def test_rewritten_program_matches_float64():
    inputs = _inputs()
    exported = torch.export.export(Products(), inputs)
    diagonal_products(exported)
    outs = exported.module()(*inputs)
    refs = Products()(*[x.double() for x in inputs])
    for out, ref in zip(outs, refs, strict=True):
        assert out.shape == ref.shape
        torch.testing.assert_close(out.double(), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3])
def test_nothing_to_rewrite_leaves_the_program_alone(n):
    exported = torch.export.export(torch.nn.Linear(n, 2), (torch.randn(4, n),))
    before = _targets(exported)
    assert diagonal_products(exported) == 0 and _targets(exported) == before
