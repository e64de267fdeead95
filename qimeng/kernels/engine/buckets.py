"""Block configurations per bucket of the dynamic sizes, chosen at run time by ``model_new.py``.

A bucket of a dynamic dimension is a power of two ``b``: the sizes ``(b/2, b]`` (``bucket``). Each
bucket of each dynamic dimension (the others at their captured bucket) gets the configuration of its
kernels and GEMM templates at its representative size (the bucket's top, inside the range): the tuned
one where the store has one for the kernel at that size, else the expert default there, the strategy
kept. The captured bucket keeps the search's winner (tuned on the GPU).

The file is rendered at the captured sizes with each bucket's configuration; the integer literals that
differ from the captured configuration's file, outside every ``@triton.jit`` function (launch grids,
constexpr values, warps, stages, the template's launch tuple), become slots ``_qm_cfg[k]`` read from
``_qm_config(sizes)``: a table of one row per bucket that differs, the captured row for every other
size. The registrations for compilation ahead keep the captured row's values (the other rows' kernels
compile at their first launch). A configuration that changes a kernel's code (a split reduction's
segment count) or anything else keeps its buckets on the captured row. Compiled kernels are kept per (kernel, row) for the
direct launch path.
"""

from __future__ import annotations

import re
import tokenize
from dataclasses import dataclass, field

from qimeng.kernels.engine.dynamic_dims import DynamicDim
from qimeng.kernels.engine.source_tokens import jit_lines, tokens

BucketKey = tuple[int, ...]  # one bucket per dynamic dimension, in their order
SLOT = "_qm_cfg"
AHEAD = "_qm_ahead("  # a module-level registration for compilation ahead (codegen/ahead.py)
MAX_CHECKED_ROWS = 3  # rows beyond the captured one that the harness verifies (the rest: captured row)


def bucket(n: int) -> int:
    """The smallest power of two >= ``n`` (``n`` >= 1)."""
    return 1 << (n - 1).bit_length()


def dim_buckets(dim: DynamicDim) -> list[int]:
    """The buckets that meet the range of ``dim``, smallest first."""
    out, b = [], bucket(dim.low)
    while b <= bucket(dim.high):
        out.append(b)
        b *= 2
    return out


def representative(dim: DynamicDim, b: int) -> int:
    """The size a bucket's configuration is chosen at: its top, inside the range."""
    return min(b, dim.high)


def odd_member(dim: DynamicDim, b: int) -> int:
    """A size of bucket ``b`` in range to verify its row at (odd where it can be)."""
    low, high = max(dim.low, b // 2 + 1), min(dim.high, b)
    return next((n for n in range(high, low - 1, -1) if n % 2), high)


def captured_key(dims: list[DynamicDim]) -> BucketKey:
    return tuple(bucket(d.captured) for d in dims)


def star(dims: list[DynamicDim]) -> list[tuple[BucketKey, dict[str, int]]]:
    """Each bucket of each dimension with the others at their captured bucket, with its representative
    sizes (by dimension name; the others as captured), nearest to the captured bucket first."""
    base = captured_key(dims)
    out = []
    for i, d in enumerate(dims):
        for b in dim_buckets(d):
            if b != base[i]:
                key = base[:i] + (b,) + base[i + 1:]
                out.append((key, {**{x.name: x.captured for x in dims}, d.name: representative(d, b)}))
    return sorted(out, key=lambda kv: sum(abs(a.bit_length() - c.bit_length()) for a, c in zip(kv[0], base)))


@dataclass
class BucketTable:
    """The captured row, the rows of the buckets that differ, and why other buckets keep the captured row."""

    default: tuple[int, ...] = ()
    rows: dict[BucketKey, tuple[int, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self, key: BucketKey) -> tuple[int, ...]:
        return self.rows.get(key, self.default)


def _differences(base: list[tokenize.TokenInfo], other: str, jit: set[int]) -> dict[int, str] | str:
    """Token index -> other's literal where ``other`` differs from ``base``, or why it cannot be a row."""
    other_tokens = tokens(other)
    if len(other_tokens) != len(base):
        return "its configuration changes the code's structure"
    out = {}
    for k, (a, b) in enumerate(zip(base, other_tokens)):
        if a.string == b.string or a.line.startswith(AHEAD):  # compiled ahead: the captured row only
            continue
        if a.type != tokenize.NUMBER or b.type != tokenize.NUMBER:
            return f"its configuration changes the code: `{a.line.strip()[:100]}`"
        if a.start[0] in jit:
            return f"its configuration changes a kernel's code: `{a.line.strip()[:100]}`"
        if not (a.string.isdigit() and b.string.isdigit()):  # a slot holds a block size, a count of programs
            return f"its configuration changes a constant that is no integer: `{a.line.strip()[:100]}`"
        out[k] = b.string
    return out


def slot(samples: list[str], variants: list[tuple[BucketKey, str]], dims: list[DynamicDim]
         ) -> tuple[list[str], BucketTable]:
    """``samples`` (canonical sources at several sizes, the captured first, all in the captured
    configuration) with every literal a bucket's configuration changes replaced by its slot, and the
    table of rows. ``variants``: each bucket's canonical source at the captured sizes, nearest first."""
    base = tokens(samples[0])
    streams = [tokens(s) for s in samples]
    jit = jit_lines(samples[0])
    varying = {k for k in range(len(base)) if any(s[k].string != base[k].string for s in streams)}
    table, diffs = BucketTable(), {}
    for key, source in variants:
        found = _differences(base, source, jit)
        if isinstance(found, dict) and set(found) & varying:
            found = "its configuration changes a literal that depends on the size"
        if isinstance(found, str):
            table.notes.append(f"bucket {describe(key, dims)}: {found}; it runs the captured configuration")
        elif found:
            diffs[key] = found
    distinct: list[dict[int, str]] = []
    for key, found in list(diffs.items()):
        if found not in distinct and len(distinct) >= MAX_CHECKED_ROWS:
            table.notes.append(f"bucket {describe(key, dims)}: more configurations than the {MAX_CHECKED_ROWS} "
                               "verified ones; it runs the captured configuration")
            del diffs[key]
        elif found not in distinct:
            distinct.append(found)
    positions = sorted({k for found in diffs.values() for k in found})
    if not positions:
        return samples, table
    columns = {k: (base[k].string, *(found.get(k, base[k].string) for found in diffs.values())) for k in positions}
    distinct_columns = list(dict.fromkeys(columns.values()))  # one slot for literals that always agree
    slots = {k: distinct_columns.index(c) for k, c in columns.items()}
    table.default = tuple(int(c[0]) for c in distinct_columns)
    table.rows = {key: tuple(int(c[1 + j]) for c in distinct_columns) for j, key in enumerate(diffs)}
    return [_replace(s, streams[j], slots) for j, s in enumerate(samples)], table


def _replace(source: str, stream: list[tokenize.TokenInfo], slots: dict[int, int]) -> str:
    lines = source.splitlines(keepends=True)
    for k in sorted(slots, reverse=True):
        (row, col), (_, col2) = stream[k].start, stream[k].end
        lines[row - 1] = lines[row - 1][:col] + f"{SLOT}[{slots[k]}]" + lines[row - 1][col2:]
    return "".join(lines)


def describe(key: BucketKey, dims: list[DynamicDim]) -> str:
    """The sizes of a bucket key inside the ranges, e.g. ``batch in (8, 16]``."""
    return ", ".join(f"{d.name} in ({max(b // 2, d.low - 1)}, {min(b, d.high)}]" for d, b in zip(dims, key))


def with_table(source: str, table: BucketTable, dims: list[DynamicDim]) -> str:
    """The threaded generic source with the table and its lookup, each function that reads a slot
    binding ``_qm_cfg`` first (after the size binds), and compiled kernels kept per (kernel, row)."""
    if not table.default:
        return source
    names = [d.symbol for d in dims]
    key = "(" + "".join(f"_qm_bucket({n}), " for n in names) + ")"
    runtime = "\n".join([
        f"_QM_CONFIG_CAPTURED = {table.default!r}",
        f"_QM_CONFIGS = {dict(sorted(table.rows.items()))!r}  # bucket of each dynamic size -> block configuration",
        "", "",
        "def _qm_bucket(n):",
        '    """The power-of-two bucket of a size: the smallest power of two >= n."""',
        "    return 1 << (n - 1).bit_length()",
        "", "",
        f"def _qm_config({', '.join(names)}):",
        '    """The block configuration of the buckets of these sizes (the captured one for a bucket without its own)."""',
        f"    return _QM_CONFIGS.get({key}, _QM_CONFIG_CAPTURED)",
        "", ""])
    lines = source.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)def \w+\(", line)
        if m is None:
            out.append(line)
            i += 1
            continue
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > len(m.group(1))):
            end += 1
        body = lines[i + 1:end]
        if not any(f"{SLOT}[" in b for b in body):
            out.append(line)
            i += 1
            continue
        inner = " " * (len(m.group(1)) + 4)
        binds = 0
        while binds < len(body) and re.match(rf"^{inner}qm_\w+ = _qm_a\d+\.shape\[\d+\]$", body[binds].rstrip("\n")):
            binds += 1
        body = [re.sub(r"\b(_qm_direct|_qm_keep)\(('\w+')", rf"\1((\2, {SLOT})", b) for b in body]
        out += [line, *body[:binds], f"{inner}{SLOT} = _qm_config({', '.join(names)})\n", *body[binds:]]
        i = end
    text = "".join(out)
    at = text.index("def _qm_guard(args):")
    return text[:at] + runtime + text[at:]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def report_lines(table: BucketTable, dims: list[DynamicDim]) -> list[str]:
    """The report's lines on buckets."""
    if not table.default:
        return ["- one block configuration for every size (no bucket's configuration differs from the captured one)"]
    lines = [f"- block configuration per power-of-two bucket; captured bucket {describe(captured_key(dims), dims)}: "
             f"{table.default}"]
    lines += [f"- bucket {describe(k, dims)}: {row}" for k, row in sorted(table.rows.items())]
    lines.append("- every other bucket runs the captured configuration")
    return lines + [f"- {note}" for note in table.notes]
