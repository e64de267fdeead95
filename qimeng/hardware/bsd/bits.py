"""Vectorised conversions between 0/1 matrices, integers and hexadecimal text (no loop per sample)."""

from __future__ import annotations

import numpy as np

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def all_vectors(n: int) -> np.ndarray:
    """Every input vector of ``n`` bits, shape (2**n, n) uint8; row r has bit i = (r >> i) & 1."""
    rows = np.arange(1 << n, dtype=np.uint32)
    return ((rows[:, None] >> np.arange(n, dtype=np.uint32)) & 1).astype(np.uint8)


def to_index(bits: np.ndarray) -> np.ndarray:
    """Row integers (bit i of a row = column i) of a (B, n<=63) 0/1 matrix."""
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[1], dtype=np.uint64))
    return bits.astype(np.uint64) @ weights


def to_hex_lines(bits: np.ndarray) -> bytes:
    """One hexadecimal line per row (most significant digit first), for Verilog's ``%h``."""
    b, n = bits.shape
    digits = (n + 3) // 4
    padded = np.zeros((b, digits * 4), dtype=np.uint8)
    padded[:, :n] = bits
    nibbles = padded.reshape(b, digits, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
    text = np.empty((b, digits + 1), dtype=np.uint8)
    text[:, :digits] = _HEX_DIGITS[nibbles[:, ::-1]]
    text[:, digits] = ord("\n")
    return text.tobytes()


def from_hex_lines(data: bytes, width: int) -> np.ndarray:
    """Inverse of :func:`to_hex_lines`; raises ValueError on X/Z or malformed text."""
    digits = (width + 3) // 4
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size % (digits + 1):
        raise ValueError(f"simulator output is not {digits}-digit hex lines")
    raw = raw.reshape(-1, digits + 1)[:, :digits]
    lookup = np.full(256, 255, dtype=np.uint8)
    lookup[_HEX_DIGITS] = np.arange(16, dtype=np.uint8)
    lookup[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16, dtype=np.uint8)
    nibbles = lookup[raw][:, ::-1]
    if (nibbles == 255).any():
        raise ValueError("simulator output holds X or Z bits")
    bits = ((nibbles[:, :, None] >> np.arange(4, dtype=np.uint8)) & 1).reshape(raw.shape[0], digits * 4)
    return bits[:, :width].astype(np.uint8)
