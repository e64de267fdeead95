"""The emitted Verilog read back as a multiplexer netlist and evaluated in numpy, apart from the diagram.

``hw learn`` checks the circuit it wrote by reading the file again: every ``assign w = ...;`` of
the emitter's subset (``s``, ``~s``, ``s & h``, ``~s & l``, ``~s | h``, ``s | l``, ``s ? h : l``
over ``x[i]``, earlier wires and ``1'b0``/``1'b1``) becomes a multiplexer ``s ? h : l``; anything
else is rejected. Two evaluators, both vectorised over input vectors:

- :meth:`Netlist.evaluate`: every wire on 64 vectors per machine word, in the file's order;
- :meth:`Netlist.exhaustive_mismatches`: every input vector. When each select is an input and the
  inputs are tested in one order on every path (an ordered branching program), the state of each output (the wire still to be evaluated) is computed once per
  assignment of the inputs fixed so far, doubling the assignments one input at a time, so the work is
  about twice the number of vectors times the outputs, however many wires there are; otherwise
  :meth:`Netlist.evaluate` on blocks of 2**16 vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from qimeng.hardware.bsd.bits import all_vectors

EXHAUSTIVE_BLOCK_INPUTS = 20  # the last doubling steps run on blocks of 2**20 assignments
BITWISE_BLOCK_INPUTS = 16  # wire-by-wire evaluation on blocks of 2**16 vectors (8 KiB per wire)
_ASSIGN = re.compile(r"\s*assign\s+(w\d+)\s*=\s*([^;]+);\s*$")
_OUTPUT = re.compile(r"\s*assign\s+y\s*=\s*\{([^}]*)\};\s*$")
_OPERAND = r"([^\s~?:&|]+)"  # x[i], w{k}, 1'b0 or 1'b1
_FORMS = [  # (expression, (select, hi, lo) as operand numbers or constants)
    (rf"{_OPERAND}", (0, "1'b1", "1'b0")),
    (rf"~{_OPERAND}", (0, "1'b0", "1'b1")),
    (rf"{_OPERAND} & {_OPERAND}", (0, 1, "1'b0")),
    (rf"~{_OPERAND} & {_OPERAND}", (0, "1'b0", 1)),
    (rf"~{_OPERAND} \| {_OPERAND}", (0, 1, "1'b1")),
    (rf"{_OPERAND} \| {_OPERAND}", (0, "1'b1", 1)),
    (rf"{_OPERAND} \? {_OPERAND} : {_OPERAND}", (0, 1, 2)),
]


@dataclass
class Netlist:
    """Signals: 0 and 1 the constants, 2 + i input ``x[i]``, 2 + N + k wire ``w{k}`` (= ``sel ? hi : lo``)."""

    n_inputs: int
    sel: np.ndarray  # (W,) signal of each wire's select
    hi: np.ndarray
    lo: np.ndarray
    outputs: np.ndarray  # (M,) signal of each output bit, y[0] first

    @property
    def first_wire(self) -> int:
        return 2 + self.n_inputs

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """(B, M) uint8 outputs on the rows of a (B, N) 0/1 matrix."""
        words = np.packbits(x, axis=0, bitorder="little")
        value = np.empty((self.first_wire + len(self.sel), words.shape[0]), np.uint8)
        value[0], value[1], value[2 : self.first_wire] = 0, 0xFF, words.T
        for k, (s, h, lo) in enumerate(zip(self.sel.tolist(), self.hi.tolist(), self.lo.tolist())):
            value[self.first_wire + k] = (value[s] & value[h]) | (~value[s] & value[lo])
        return np.unpackbits(value[self.outputs], axis=1, count=x.shape[0], bitorder="little").T.copy()

    def exhaustive_mismatches(self, oracle: Callable[[np.ndarray], np.ndarray]) -> int:
        """Input vectors (of all 2**N) on which some output differs from ``oracle``."""
        n = self.n_inputs
        order = self._input_order()
        if order is None:
            return self._blockwise(oracle)
        split = max(0, n - EXHAUSTIVE_BLOCK_INPUTS)
        top, rest = order[:split], order[split:]
        wrong = 0
        for p, state in enumerate(self._expand(self.outputs[None, :].astype(np.int32), top)):
            final = self._expand(state[None, :], rest)  # (2**20, M): every completion of prefix p
            x = np.empty((len(final), n), np.uint8)
            x[:, top] = (p >> np.arange(len(top) - 1, -1, -1)) & 1
            x[:, rest] = (np.arange(len(final))[:, None] >> np.arange(len(rest) - 1, -1, -1)) & 1
            wrong += int((final.astype(np.uint8) != oracle(x)).any(axis=1).sum())
        return wrong

    def _blockwise(self, oracle: Callable[[np.ndarray], np.ndarray]) -> int:
        """:meth:`exhaustive_mismatches` by :meth:`evaluate` on blocks of at most 2**16 vectors."""
        n = self.n_inputs
        low_bits = min(n, BITWISE_BLOCK_INPUTS)
        low, wrong = all_vectors(low_bits), 0
        for p in range(1 << (n - low_bits)):
            high = np.broadcast_to((p >> np.arange(n - low_bits)) & 1, (len(low), n - low_bits)).astype(np.uint8)
            x = np.concatenate([low, high], axis=1)
            wrong += int((self.evaluate(x) != oracle(x)).any(axis=1).sum())
        return wrong

    def _branches(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(select, hi, lo) of every signal: an input ``x[i]`` is ``x[i] ? 1 : 0``, a constant itself."""
        inputs = np.arange(2, self.first_wire)
        sel = np.concatenate([[0, 1], inputs, self.sel])
        hi = np.concatenate([[0, 1], np.ones_like(inputs), self.hi])
        lo = np.concatenate([[0, 1], np.zeros_like(inputs), self.lo])
        return sel, hi, lo

    def _input_order(self) -> list[int] | None:
        """An order of the inputs in which every wire's select comes before the selects of the signals
        it chooses between (the network is an ordered branching program); None when there is none, or
        when some select is a wire."""
        if (self.sel >= self.first_wire).any():
            return None
        sel, _, _ = self._branches()
        below: dict[int, set[int]] = {i: set() for i in range(self.n_inputs)}
        for child in (self.hi, self.lo):
            var = child >= 2
            edges = np.unique(np.stack([self.sel[var], sel[child[var]]], axis=1), axis=0)
            for u, v in (edges - 2).tolist():
                below[u].add(v)
        above = {i: 0 for i in below}
        for vs in below.values():
            for v in vs:
                above[v] += 1
        ready, order = [i for i in below if above[i] == 0], []
        while ready:
            u = ready.pop()
            order.append(u)
            for v in below[u]:
                above[v] -= 1
                if above[v] == 0:
                    ready.append(v)
        return order if len(order) == self.n_inputs else None

    def _expand(self, states: np.ndarray, inputs: list[int]) -> np.ndarray:
        """States (A, M) -> (A * 2**len(inputs), M): each row's completions by ``inputs`` (first input
        most significant). An input settles a state when it is the state signal's select; in an ordered
        network the signal it leads to selects on an input not fixed yet."""
        sel, hi, lo = self._branches()
        for i in inputs:
            here = sel[states] == 2 + i
            zero, one = states.copy(), states.copy()
            zero[here], one[here] = lo[states[here]], hi[states[here]]
            states = np.stack([zero, one], axis=1).reshape(-1, states.shape[1])
        return states


def read_netlist(path: Path) -> Netlist:
    """The netlist of an emitted ``module NAME(input [N-1:0] x, output [M-1:0] y)``; ValueError if the
    file is not in the emitter's subset."""
    text = path.read_text()
    header = re.search(r"module\s+\w+\s*\(\s*input\s+\[(\d+):0\]\s+x\s*,\s*output\s+\[(\d+):0\]\s+y\s*\)", text)
    if header is None:
        raise ValueError(f"{path}: no `module NAME(input [N-1:0] x, output [M-1:0] y)` header")
    n, m = int(header.group(1)) + 1, int(header.group(2)) + 1
    signal: dict[str, int] = {"1'b0": 0, "1'b1": 1}
    signal.update({f"x[{i}]": 2 + i for i in range(n)})
    sel: list[int] = []
    hi: list[int] = []
    lo: list[int] = []
    outputs: list[int] | None = None

    def operand(name: str, line: str) -> int:
        if name not in signal:
            raise ValueError(f"{path}: `{line.strip()}` uses {name}, not an input or an earlier wire")
        return signal[name]

    for line in text.splitlines():
        found = _ASSIGN.match(line)
        if found:
            wire, expr = found.group(1), found.group(2).strip()
            for pattern, (s, h, lo_) in _FORMS:
                parts = re.fullmatch(pattern, expr)
                if parts:
                    pick = lambda p: operand(p if isinstance(p, str) else parts.group(p + 1), line)  # noqa: E731
                    sel.append(pick(s))
                    hi.append(pick(h))
                    lo.append(pick(lo_))
                    break
            else:
                raise ValueError(f"{path}: `{line.strip()}` is not one of the emitter's forms")
            if wire in signal:
                raise ValueError(f"{path}: {wire} is assigned twice")
            signal[wire] = 2 + n + len(sel) - 1
        elif _OUTPUT.match(line):
            names = [p.strip() for p in _OUTPUT.match(line).group(1).split(",")]
            outputs = [operand(p, line) for p in names[::-1]]
    if outputs is None or len(outputs) != m:
        raise ValueError(f"{path}: no `assign y = {{...}};` of {m} bits")
    if any(s < 2 for s in sel):
        raise ValueError(f"{path}: a multiplexer selects on a constant")
    arr = lambda xs: np.array(xs, dtype=np.int64)  # noqa: E731
    return Netlist(n, arr(sel), arr(hi), arr(lo), arr(outputs))
