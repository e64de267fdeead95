"""Example oracles for circuit learning (vectorised numpy; column i of x is input bit i)."""

import numpy as np


def _field(x: np.ndarray, lo: int, width: int) -> np.ndarray:
    return x[:, lo : lo + width].astype(np.int64) @ (1 << np.arange(width, dtype=np.int64))


def _bits(value: np.ndarray, width: int) -> np.ndarray:
    return ((value[:, None] >> np.arange(width)) & 1).astype(np.uint8)


def adder8(x: np.ndarray) -> np.ndarray:
    """x[0:8] = a, x[8:16] = b, x[16] = carry in; y[0:9] = a + b + cin."""
    return _bits(_field(x, 0, 8) + _field(x, 8, 8) + x[:, 16].astype(np.int64), 9)


def _alu(x: np.ndarray, width: int) -> np.ndarray:
    """x[0:w] = a, x[w:2w] = b, x[2w:2w+3] = op. Ops: add, sub, and, or, xor, a<<1, a>>1, a<b (unsigned)."""
    mask = (1 << width) - 1
    a, b, op = _field(x, 0, width), _field(x, width, width), _field(x, 2 * width, 3)
    results = np.stack([a + b, a - b, a & b, a | b, a ^ b, a << 1, a >> 1, (a < b).astype(np.int64)])
    return _bits(results[op, np.arange(len(op))] & mask, width)


def alu8(x: np.ndarray) -> np.ndarray:
    """8-bit ALU: 19 inputs, 8 outputs."""
    return _alu(x, 8)


def alu16(x: np.ndarray) -> np.ndarray:
    """16-bit ALU: 35 inputs, 16 outputs."""
    return _alu(x, 16)


def majority5(x: np.ndarray) -> np.ndarray:
    """1 when at least 3 of 5 inputs are 1."""
    return (x.sum(axis=1, keepdims=True) >= 3).astype(np.uint8)


def mul8(x: np.ndarray) -> np.ndarray:
    """8x8 unsigned multiplier: 16 inputs, 16 outputs."""
    return _bits(_field(x, 0, 8) * _field(x, 8, 8), 16)


def shifter16(x: np.ndarray) -> np.ndarray:
    """16-bit barrel shifter a << s: x[0:16] = a, x[16:20] = s; 20 inputs, 16 outputs."""
    return _bits((_field(x, 0, 16) << _field(x, 16, 4)) & 0xFFFF, 16)


def adder32(x: np.ndarray) -> np.ndarray:
    """32-bit adder: 64 inputs, 33 outputs."""
    return _bits(_field(x, 0, 32) + _field(x, 32, 32), 33)
