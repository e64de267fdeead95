"""Python source as tokens, and its ``@triton.jit`` functions: what ``generalize`` and ``buckets``
compare generated files by."""

from __future__ import annotations

import io
import re
import tokenize

# a Triton kernel: its name, parameters and body (indented and blank lines)
JIT_FUNCTION = re.compile(r"^@triton\.jit(?:\([^)]*\))?\ndef (\w+)\(([^)]*)\):\n((?:(?:    .*)?\n)*)", re.M)


def tokens(source: str) -> list[tokenize.TokenInfo]:
    """The tokens of ``source`` without comments and non-logical newlines."""
    return [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL)]


def jit_lines(source: str) -> set[int]:
    """Line numbers (1-based) inside the ``@triton.jit`` functions of ``source``."""
    lines: set[int] = set()
    for m in JIT_FUNCTION.finditer(source):
        first = source.count("\n", 0, m.start()) + 1
        lines.update(range(first, first + m.group(0).count("\n") + 1))
    return lines
