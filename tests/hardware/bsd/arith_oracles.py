"""More oracles for circuit learning: comparators and multipliers of any width (vectorised numpy)."""

import numpy as np


def _field(x: np.ndarray, lo: int, width: int) -> np.ndarray:
    return x[:, lo : lo + width].astype(np.int64) @ (1 << np.arange(width, dtype=np.int64))


def _bits(value: np.ndarray, width: int) -> np.ndarray:
    return ((value[:, None] >> np.arange(width)) & 1).astype(np.uint8)


def comparator8(x: np.ndarray) -> np.ndarray:
    """x[0:8] = a, x[8:16] = b; y = (a < b, a == b, a > b), unsigned: 16 inputs, 3 outputs."""
    a, b = _field(x, 0, 8), _field(x, 8, 8)
    return np.stack([a < b, a == b, a > b], axis=1).astype(np.uint8)


def multiplier(width: int):
    """An unsigned ``width`` x ``width`` multiplier: x[0:w] = a, x[w:2w] = b, y = a * b (2w bits)."""

    def mul(x: np.ndarray) -> np.ndarray:
        return _bits(_field(x, 0, width) * _field(x, width, width), 2 * width)

    mul.__name__ = f"mul{width}"
    return mul


mul4, mul6, mul12 = multiplier(4), multiplier(6), multiplier(12)
