"""Render one IR kernel and its block configuration as a ``@triton.jit`` function plus its launcher.

Pointwise kernels use a 1-D grid over the flattened (coalesced) iteration space. Reduction and scan
kernels use 2-D tiles ``[BLOCK_P rows, BLOCK_R reduce elements]``: ``one_pass`` keeps a whole row in
registers (loads once), ``looped`` walks the reduce axis in chunks (one loop per reduction and one for
element-wise stores), ``online`` fuses a max and a sum-of-exp into one loop (softmax/logsumexp), or
a sum and the squared deviations from its mean (var/std and the norms: Welford).
Everything renders under ``TRITON_INTERPRET=1`` as well as on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qimeng.kernels.engine.codegen.ahead import ahead_line
from qimeng.kernels.engine.codegen.launch import launch_lines
from qimeng.kernels.engine.ir.expr import Const, Expr, IndexValue, Load, Op, ReduceRef, ScanRef, walk
from qimeng.kernels.engine.ir.index import Div, Index, Mod, Value, Var
from qimeng.kernels.engine.ir.kernel import Kernel, loads_of
from qimeng.kernels.engine.ir.transform import coalesce, order_by_store
from qimeng.kernels.engine.steps import KernelConfig

TL_DTYPES = {
    "float32": "tl.float32", "float16": "tl.float16", "bfloat16": "tl.bfloat16", "float64": "tl.float64",
    "int64": "tl.int64", "int32": "tl.int32", "int16": "tl.int16", "int8": "tl.int8", "uint8": "tl.uint8",
    "bool": "tl.int1",
}

_FLOATS = ("float32", "float16", "bfloat16", "float64")
UNSUPPORTED_OPS = frozenset({"atan", "asin", "acos", "atan2"})

# Helpers every generated file carries (plain tl code: works on CUDA and under the interpreter).
HELPERS = '''
@triton.jit
def _qm_tanh(x):
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def _qm_round(x):
    r = tl.floor(x + 0.5)
    tie = (r - x) == 0.5
    odd = (r - 2.0 * tl.floor(r * 0.5)) != 0.0
    return tl.where(tie & odd, r - 1.0, r)


@triton.jit
def _qm_trunc(x):
    return tl.where(x >= 0, tl.floor(x), tl.ceil(x))


@triton.jit
def _qm_mul_combine(a, b):
    return a * b


@triton.jit
def _qm_welford_combine(mean_a, m2_a, w_a, mean_b, m2_b, w_b):
    w = w_a + w_b
    delta = mean_b - mean_a
    frac = tl.where(w == 0.0, 0.0, w_b / tl.where(w == 0.0, 1.0, w))
    return mean_a + delta * frac, m2_a + m2_b + delta * delta * w_a * frac, w
'''


class CodegenError(Exception):
    """The kernel uses something this renderer cannot express (the message says what)."""


@dataclass(frozen=True)
class Rendered:
    name: str
    source: str  # the @triton.jit function and its launcher
    launcher: str  # name of the launcher: launcher(*input_tensors, *output_tensors)
    config: KernelConfig  # the concrete configuration used
    ahead: tuple[str, ...] = ()  # module-level lines registering its launches for compilation ahead (ahead.py)


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def is_inner_reduction(kernel: Kernel) -> bool:
    """The reduce axis is the contiguous one of the main loads (rows are contiguous)."""
    if not kernel.reduce:
        return False
    last = kernel.reduce[-1]
    loads = [ld for ld in loads_of(kernel) if last in ld.index.variables()]
    if not loads:
        return True
    return sum(1 for ld in loads if ld.index.coeff(last) == 1) * 2 >= len(loads)


def resolve_config(kernel: Kernel, config: KernelConfig) -> KernelConfig:
    """Fill the defaults of ``config`` for this kernel's sizes (the untuned expert choice)."""
    if not kernel.reduce and transposed_axes(kernel) is not None:  # a [BLOCK_R, BLOCK_P] tile of two axes
        return replace(config, strategy="tiled", block_p=_next_pow2(config.block_p or 64),
                       block_r=_next_pow2(config.block_r or 64), num_warps=config.num_warps or 4,
                       num_stages=config.num_stages or 1)
    if not kernel.reduce:
        block = _next_pow2(config.block_p) if config.block_p else min(1024, _next_pow2(max(kernel.parallel_size, 16)))
        return replace(config, strategy="pointwise", block_p=block, block_r=1,
                       num_warps=config.num_warps or (4 if block <= 1024 else 8), num_stages=config.num_stages or 1)
    rows, length = kernel.parallel_size, kernel.reduce_size
    strategy = config.strategy
    if kernel.scans and not is_inner_reduction(kernel):  # a scan over a strided axis: rows side by side
        strategy = "one_pass" if _next_pow2(length) * min(32, _next_pow2(rows)) <= 8192 else "looped"
    elif kernel.scans:
        strategy = "looped" if strategy in ("auto", "split", "online") and length > 4096 else (
            strategy if strategy in ("one_pass", "looped") else "one_pass")
    elif strategy == "auto":
        if welford_split_applicable(kernel) and -(-rows // split_rows(kernel)) < SPLIT_PROGRAMS // 4 and length >= 8192:
            strategy = "split"
        elif split_applicable(kernel) and rows < 64 and length >= 32768:
            strategy = "split"
        elif not is_inner_reduction(kernel):  # one pass only while a tile still spans 32 contiguous rows
            strategy = "one_pass" if _next_pow2(length) * min(32, _next_pow2(rows)) <= 8192 else "looped"
        else:
            strategy = "one_pass" if length <= 8192 else "looped"
    if strategy == "online" and not online_applicable(kernel):
        strategy = "looped"
    if strategy == "split" and not split_applicable(kernel):
        strategy = "looped"
    inner = is_inner_reduction(kernel)
    if strategy == "split" and welford_split_applicable(kernel):
        block_r = _next_pow2(config.block_r or (2048 if inner else 4096 // split_rows(kernel)))
        row_blocks = -(-max(rows, 1) // split_rows(kernel))
        segments = config.block_p or max(1, min(1024, SPLIT_PROGRAMS // row_blocks, -(-length // (block_r * 2))))
        return replace(config, strategy="split", block_p=segments, block_r=block_r,
                       num_warps=config.num_warps or 8, num_stages=config.num_stages or 1)
    if strategy == "split":
        block_r = _next_pow2(config.block_r or 2048)
        segments = config.block_p or max(1, min(1024, 1056 // max(rows, 1), -(-length // (block_r * 2))))
        return replace(config, strategy="split", block_p=segments, block_r=block_r,
                       num_warps=config.num_warps or 8, num_stages=config.num_stages or 1)
    if strategy == "one_pass":
        block_r = config.block_r or _next_pow2(length)
        block_r = max(block_r, _next_pow2(length))
        default_p = max(1, min(_next_pow2(rows), max(1, 2048 // block_r))) if inner else min(64, _next_pow2(rows))
    elif inner:
        block_r = config.block_r or min(2048, _next_pow2(length))
        default_p = 1
    else:  # rows are the contiguous axis: a tile of rows wide enough for whole sectors, enough programs
        default_p = outer_block_rows(rows)
        block_r = config.block_r or min(_next_pow2(length), max(8, 4096 // (config.block_p or default_p)))
    block_p = _next_pow2(config.block_p) if config.block_p else default_p
    block_r = _next_pow2(block_r)
    while block_p * block_r > 8192 and block_p > 1:
        block_p //= 2
    tile = block_p * block_r
    warps = config.num_warps or (16 if tile >= 16384 else 8 if tile >= 4096 else 4)
    return replace(config, strategy=strategy, block_p=block_p, block_r=block_r, num_warps=warps,
                   num_stages=config.num_stages or 1)


# Programs a split reduction aims at: 16 per SM of an H100/H200 (132 SMs), enough to keep memory busy.
SPLIT_PROGRAMS = 2112


def split_rows(kernel: Kernel) -> int:
    """Rows per program of a split mean/variance: one when the reduce axis is contiguous, else up to 32
    contiguous rows side by side (whole sectors per load)."""
    return 1 if is_inner_reduction(kernel) else min(32, _next_pow2(max(kernel.parallel_size, 1)))


def outer_block_rows(rows: int) -> int:
    """Rows per program of a reduction over a strided axis: 16 to 128 contiguous rows (whole 32-byte
    sectors), fewer when that leaves under about four programs per SM of an H100 (132 SMs)."""
    wanted = 16
    while wanted < 128 and rows // (wanted * 2) >= 528:
        wanted *= 2
    return min(wanted, _next_pow2(rows))


def split_applicable(kernel: Kernel) -> bool:
    """Independent sum/max/min/prod reductions with per-row outputs only, or one mean and variance pair
    (Welford) with any stores: partials then a final pass."""
    if welford_split_applicable(kernel):
        return True
    if kernel.kind != "reduction" or any(not s.row for s in kernel.stores):
        return False
    for r in kernel.reductions:
        if r.op not in ("sum", "max", "min", "prod"):
            return False
        if any(isinstance(e, ReduceRef) for e in walk(r.value)):
            return False
    return True


def welford_split_applicable(kernel: Kernel) -> bool:
    """Mean and variance pairs of one value (batch norm's statistics): per-segment Welford partials, then
    one pass per segment that merges its row's partials and writes the element-wise and row outputs."""
    return kernel.kind == "reduction" and _welford_pairs(kernel) is not None


def online_applicable(kernel: Kernel) -> bool:
    """Two dependent reductions that one pass can compute together: a max followed by a sum of
    exp(x - max) (online softmax), or a sum followed by the squared deviations from its mean (Welford)."""
    return _online_split(kernel) is not None or _welford_split(kernel) is not None


def _welford_split(kernel: Kernel):
    """(sum of e, sum of (e - sum/n)^2) as the first two reductions, n the whole reduce size, or None."""
    reds = kernel.reductions
    if len(reds) < 2 or not _is_welford_pair(reds[0], reds[1], kernel.reduce_size):
        return None
    return reds[0], reds[1]


def _is_welford_pair(total, squares, n: int) -> bool:
    if total.op != "sum" or squares.op != "sum" or total.dtype != "float32":
        return False
    v = squares.value
    if not (isinstance(v, Op) and v.name == "mul" and v.args[0] == v.args[1]):
        return False
    dev = v.args[0]
    if not (isinstance(dev, Op) and dev.name == "sub" and dev.args[0] == total.value):
        return False
    mean = dev.args[1]
    return (isinstance(mean, Op) and mean.name == "truediv" and mean.args[0] == ReduceRef(total.name, total.dtype)
            and isinstance(mean.args[1], Const) and mean.args[1].value == n)


def _welford_pairs(kernel: Kernel):
    """The reductions as mean/variance pairs (batch norm's statistics; sibling batch norms side by side),
    grouped by the value they reduce: a value the graph asks the statistics of twice is read once. A
    list of (pair that computes, names that read it), or None."""
    reds = kernel.reductions
    if not reds or len(reds) % 2:
        return None
    groups: dict = {}
    for i in range(0, len(reds), 2):
        total, squares = reds[i], reds[i + 1]
        if not _is_welford_pair(total, squares, kernel.reduce_size):
            return None
        groups.setdefault(total.value, []).append((total, squares))
    return [(pairs[0], pairs) for pairs in groups.values()]


def _online_split(kernel: Kernel):
    if len(kernel.reductions) < 2 or kernel.reductions[0].op != "max" or kernel.reductions[1].op != "sum":
        return None
    m, s = kernel.reductions[0], kernel.reductions[1]
    v = s.value
    if not (isinstance(v, Op) and v.name == "exp" and isinstance(v.args[0], Op) and v.args[0].name == "sub"):
        return None
    x, ref = v.args[0].args
    if x != m.value or ref != ReduceRef(m.name, m.dtype):
        return None
    return m, s


class _Emitter:
    """Emits SSA lines for expressions, with common-subexpression reuse inside one scope."""

    def __init__(self, var_code: dict[Var, str], mask: str, indent: str, axes: list[tuple[set[Var], str, str]],
                 refs: dict[str, str], prefix: str = "t"):
        self.var_code = var_code
        self.axes = axes  # (variables, flat index name) of each tile axis: addresses span the whole tile
        self.mask = mask
        self.indent = indent
        self.lines: list[str] = []
        self.memo: dict[Expr, str] = {}
        self.counter = 0
        self.refs = refs  # ReduceRef/ScanRef name -> code
        # temporaries are named prefix0, prefix1, ...: scopes of one kernel take distinct prefixes, since
        # Triton rejects a name a loop re-assigns with another shape than it had before the loop
        self.prefix = prefix

    def index(self, index: Index) -> str:
        parts = []
        for atom, c in index.terms:
            code = self.atom(atom)
            parts.append(code if c == 1 else f"{c} * {code}")
        if index.const or not parts:
            parts.append(str(index.const))
        return " + ".join(parts)

    def address(self, index: Index, row: bool = False) -> str:
        """The offset of ``index`` broadcast over the tile (over the row axis only for ``row``)."""
        code = self.index(index)
        used = index.variables()
        for vars_, flat, _ in self.axes[:1] if row else self.axes:
            if not used & vars_:
                code = f"{code} + 0 * {flat}"
        return code

    def atom(self, atom) -> str:
        if isinstance(atom, Var):
            return self.var_code[atom]
        if isinstance(atom, Value):
            return self.expr(atom.expr)
        if isinstance(atom, Div):
            return f"(({self.index(atom.inner)}) // {atom.divisor})"
        assert isinstance(atom, Mod)
        return f"(({self.index(atom.inner)}) % {atom.modulus})"

    def _tmp(self, code: str) -> str:
        name = f"{self.prefix}{self.counter}"
        self.counter += 1
        self.lines.append(f"{self.indent}{name} = {code}")
        return name

    def expr(self, e: Expr) -> str:
        if e in self.memo:
            return self.memo[e]
        code = self._render(e)
        if not isinstance(e, Const):
            code = self._tmp(code)
        self.memo[e] = code
        return code

    def _render(self, e: Expr) -> str:
        if isinstance(e, Const):
            return _literal(e)
        if isinstance(e, Load):
            other = "0" if e.dtype not in ("float32", "float16", "bfloat16", "float64") else "0.0"
            if e.mask is not None:  # a pad/cat mask: the address spans the axes of the index and the mask
                used = e.index.variables() | _variables(e.mask)
                axes = [axis for axis in self.axes if used & axis[0]]
                code = self.index(e.index)
                for vars_, flat, _ in axes:
                    if not e.index.variables() & vars_:
                        code = f"{code} + 0 * {flat}"
                mask = " & ".join([m for _, _, m in axes] + [f"({self.expr(e.mask)})"])
                return f"tl.load({e.buffer}_ptr + ({code}), mask={mask}, other={other})"
            used = e.index.variables()
            masks = [m for vars_, _, m in self.axes if used & vars_]
            if not masks:
                return f"tl.load({e.buffer}_ptr + ({self.index(e.index)}))"
            return f"tl.load({e.buffer}_ptr + ({self.index(e.index)}), mask={' & '.join(masks)}, other={other})"
        if isinstance(e, IndexValue):
            return f"({self.index(e.index)})"
        if isinstance(e, (ReduceRef, ScanRef)):
            return self.refs[e.name]
        assert isinstance(e, Op)
        if e.name in UNSUPPORTED_OPS:
            raise CodegenError(f"operator {e.name} has no Triton rendering")
        args = [self.expr(a) for a in e.args]
        return _op_code(e, args)


def render_expression(expr: Expr, var_code: dict[Var, str], mask: str, indent: str,
                      axes: list[tuple[set[Var], str, str]], refs: dict[str, str],
                      prefix: str = "t") -> tuple[list[str], str]:
    """Public rendering of one expression for templates: the SSA lines that compute ``expr`` and the name
    (or literal) holding its value. ``var_code`` names each variable's code, ``mask`` the tile's mask,
    ``axes`` the (variables, flat index, mask) of each tile axis, ``refs`` the code of each ``ReduceRef``,
    ``prefix`` the temporaries' names (another expression of the same kernel takes another)."""
    em = _Emitter(var_code, mask, indent, axes, refs, prefix)
    value = em.expr(expr)
    return em.lines, value


def cast_code(code: str, dtype: str) -> str:
    """Public: the Triton code of value ``code`` converted to ``dtype`` (as kernels store it)."""
    return _to(code, dtype)


def _variables(expr: Expr) -> set[Var]:
    """The iteration variables an expression depends on (through its indices)."""
    found: set[Var] = set()
    for e in walk(expr):
        if isinstance(e, (Load, IndexValue)):
            found |= e.index.variables()
    return found


def _literal(c: Const) -> str:
    v = c.value
    if c.dtype == "bool":
        return "True" if v else "False"
    if isinstance(v, float) or c.dtype in ("float32", "float64", "float16", "bfloat16"):
        v = float(v)
        if v != v:
            return 'float("nan")'
        if v in (float("inf"), float("-inf")):
            return 'float("inf")' if v > 0 else '(-float("inf"))'
        return repr(v)
    return str(int(v))


def _op_code(e: Op, a: list[str]) -> str:
    n = e.name
    binary = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "eq": "==", "ne": "!=", "lt": "<", "le": "<=",
              "gt": ">", "ge": ">=", "and": "&", "or": "|", "xor": "^"}
    if n in binary:
        return f"({a[0]} {binary[n]} {a[1]})"
    simple = {"abs": "tl.abs", "exp": "tl.exp", "exp2": "tl.exp2", "log": "tl.log", "log2": "tl.log2",
              "sqrt": "tl.sqrt", "rsqrt": "tl.rsqrt", "sin": "tl.sin", "cos": "tl.cos", "erf": "tl.erf",
              "sigmoid": "tl.sigmoid", "floor": "tl.floor", "ceil": "tl.ceil", "tanh": "_qm_tanh",
              "round": "_qm_round", "trunc": "_qm_trunc"}
    if n in simple:
        return f"{simple[n]}({a[0]})"
    table = {
        "neg": lambda: f"(-{a[0]})",
        "expm1": lambda: f"(tl.exp({a[0]}) - 1.0)",
        "log1p": lambda: f"tl.log(1.0 + {a[0]})",
        "tan": lambda: f"(tl.sin({a[0]}) / tl.cos({a[0]}))",
        "sinh": lambda: f"(0.5 * (tl.exp({a[0]}) - tl.exp(-{a[0]})))",
        "cosh": lambda: f"(0.5 * (tl.exp({a[0]}) + tl.exp(-{a[0]})))",
        "reciprocal": lambda: f"(1.0 / {a[0]})",
        "not": lambda: f"({a[0]} == 0)",
        "sign": lambda: f"tl.where({a[0]} > 0, 1, tl.where({a[0]} < 0, -1, 0)).to({TL_DTYPES[e.dtype]})",
        "isnan": lambda: f"({a[0]} != {a[0]})",
        "isinf": lambda: f"(tl.abs({a[0]}) == float(\"inf\"))",
        "maximum": lambda: f"tl.maximum({a[0]}, {a[1]})",
        "minimum": lambda: f"tl.minimum({a[0]}, {a[1]})",
        "pow": lambda: f"tl.exp({a[1]} * tl.log({a[0]}))",
        "remainder": lambda: (f"({a[0]} - {a[1]} * tl.floor({a[0]} / {a[1]}))" if e.dtype in _FLOATS else
                              f"tl.where((({a[0]} % {a[1]}) != 0) & ((({a[0]} % {a[1]}) < 0) != ({a[1]} < 0)), "
                              f"({a[0]} % {a[1]}) + {a[1]}, {a[0]} % {a[1]})"),
        "where": lambda: f"tl.where({a[0]}, {a[1]}, {a[2]})",
        "cast": lambda: f"({a[0]} != 0)" if e.dtype == "bool" else f"{a[0]}.to({TL_DTYPES[e.dtype]})",
    }
    if n not in table:
        raise CodegenError(f"operator {n} has no Triton rendering")
    return table[n]()




def _tile_axes(kernel: Kernel) -> list[tuple[set[Var], str, str]]:
    return [(set(kernel.parallel), "pindex", "pmask"), (set(kernel.reduce), "rindex", "rmask")]

_NEUTRAL = {"sum": "0", "prod": "1", "max": '(-float("inf"))', "min": 'float("inf")'}


def _neutral(op: str, dtype: str) -> str:
    if dtype in ("int64", "int32", "int16", "int8", "uint8", "bool"):
        big = {"int64": 2**63 - 1, "int32": 2**31 - 1, "int16": 2**15 - 1, "int8": 127, "uint8": 255, "bool": 1}[dtype]
        small = {"uint8": 0, "bool": 0}.get(dtype, -big - 1)
        return {"sum": "0", "prod": "1", "max": str(small), "min": str(big)}[op]
    return _NEUTRAL[op]


def render(kernel: Kernel, config: KernelConfig) -> Rendered:
    """The Triton source of ``kernel`` under ``config`` (defaults resolved)."""
    kernel = coalesce(order_by_store(kernel))
    config = resolve_config(kernel, config)
    if config.strategy == "split":
        return _render_welford_split(kernel, config) if welford_split_applicable(kernel) else _render_split(kernel, config)
    if config.strategy == "tiled":
        body = _render_tiled(kernel, config)
    elif kernel.kind == "pointwise":
        body = _render_pointwise(kernel)
    elif kernel.kind == "scan":
        body = _render_scan(kernel, config)
    else:
        body = _render_reduction(kernel, config)
    args = [f"{b.name}_ptr" for b in kernel.inputs + kernel.outputs]
    consts = ["BLOCK_P: tl.constexpr", "BLOCK_R: tl.constexpr"]
    header = ["@triton.jit", f"def {kernel.name}({', '.join(args + consts)}):"]
    launcher = f"_launch_{kernel.name}"
    params = [b.name for b in kernel.inputs + kernel.outputs]
    grid = (_tiled_programs(kernel, config) if config.strategy == "tiled"
            else f"-(-{max(kernel.parallel_size, 1)} // {config.block_p})")
    consts = {"BLOCK_P": config.block_p, "BLOCK_R": config.block_r}
    launch = [f"def {launcher}({', '.join(params)}):"] + launch_lines(
        kernel.name, grid, params, consts, config.num_warps, config.num_stages)
    ahead = ahead_line(kernel.name, [b.dtype for b in kernel.inputs + kernel.outputs], consts, config.num_warps,
                       config.num_stages)
    source = "\n".join(header + body) + "\n\n\n" + "\n".join(launch) + "\n"
    return Rendered(kernel.name, source, launcher, config, (ahead,))


def _needs_int64(kernel: Kernel) -> bool:
    biggest = max([kernel.parallel_size * max(kernel.reduce_size, 1)] +
                  [sum((s - 1) * abs(st) for s, st in zip(b.shape, b.stride)) + 1 for b in kernel.inputs + kernel.outputs])
    return biggest >= 2**31 - 1


def _decompose(flat: str, vars_: tuple[Var, ...]) -> tuple[list[str], dict[Var, str]]:
    """Lines computing each variable from a flat row-major position, and their codes."""
    lines, codes = [], {}
    strides, acc = [], 1
    for v in reversed(vars_):
        strides.append(acc)
        acc *= v.size
    strides.reverse()
    for i, (v, st) in enumerate(zip(vars_, strides)):
        code = flat if st == 1 else f"({flat} // {st})"
        if i > 0:
            code = f"({code} % {v.size})"
        lines.append(f"    {v.name} = {code}")
        codes[v] = v.name
    return lines, codes


def transposed_axes(kernel: Kernel) -> tuple[Var, Var] | None:
    """(a, b) when the stores run contiguously along parallel axis ``a`` but some load runs
    contiguously along another axis ``b`` (a transpose): such a kernel is tiled over both axes, so
    that every access is coalesced (Triton moves the tile between layouts through shared memory)."""
    if kernel.reduce or not kernel.stores:
        return None
    a = next((v for v, c in kernel.stores[0].index.terms if isinstance(v, Var) and c == 1), None)
    if a is None or a not in kernel.parallel or a.size < 16:
        return None
    for load in loads_of(kernel):
        coeffs = {v: c for v, c in load.index.terms if isinstance(v, Var)}
        if coeffs.get(a, 0) in (0, 1):
            continue
        b = next((v for v, c in coeffs.items() if c == 1 and v in kernel.parallel and v != a and v.size >= 16), None)
        if b is not None:
            return a, b
    return None


def _tiled_programs(kernel: Kernel, config: KernelConfig) -> str:
    """The grid of a tiled kernel, as a Python expression of the sizes (they stay visible as numbers:
    ``generalize`` turns sizes into runtime arguments)."""
    a, b = transposed_axes(kernel)
    rest = max(kernel.parallel_size, 1) // (a.size * b.size)
    return f"-(-{a.size} // {config.block_p}) * -(-{b.size} // {config.block_r}) * {rest}"


def _render_tiled(kernel: Kernel, config: KernelConfig) -> list[str]:
    """A pointwise kernel over a [BLOCK_R, BLOCK_P] tile of axes (b, a); the other axes per program."""
    a, b = transposed_axes(kernel)
    na, nb = f"tl.cdiv({a.size}, BLOCK_P)", f"tl.cdiv({b.size}, BLOCK_R)"
    pid = "tl.program_id(0).to(tl.int64)" if _needs_int64(kernel) else "tl.program_id(0)"
    lines = [f"    pid = {pid}",
             f"    xindex = (pid % {na}) * BLOCK_P + tl.arange(0, BLOCK_P)[None, :]",
             f"    yindex = ((pid // {na}) % {nb}) * BLOCK_R + tl.arange(0, BLOCK_R)[:, None]",
             f"    amask = xindex < {a.size}",
             f"    bmask = yindex < {b.size}",
             "    xmask = bmask & amask",
             f"    zindex = pid // ({na} * {nb})"]
    others = tuple(v for v in kernel.parallel if v not in (a, b))
    dec, codes = _decompose("zindex", others)
    lines += dec
    codes.update({a: "xindex", b: "yindex"})
    em = _Emitter(codes, "xmask", "    ", [({b}, "yindex", "bmask"), ({a}, "xindex", "amask")], {})
    for s in kernel.stores:
        value = em.expr(s.value)
        out = next(buf for buf in kernel.outputs if buf.name == s.buffer)
        em.lines.append(f"    tl.store({s.buffer}_ptr + ({em.address(s.index)}), {_to(value, out.dtype)}, mask=xmask)")
    return lines + em.lines


def _render_pointwise(kernel: Kernel) -> list[str]:
    n = max(kernel.parallel_size, 1)
    pid = "tl.program_id(0).to(tl.int64)" if _needs_int64(kernel) else "tl.program_id(0)"
    lines = [f"    xindex = {pid} * BLOCK_P + tl.arange(0, BLOCK_P)", f"    xmask = xindex < {n}"]
    dec, codes = _decompose("xindex", kernel.parallel)
    lines += dec
    em = _Emitter(codes, "xmask", "    ", [(set(kernel.parallel), "xindex", "xmask")], {})
    for s in kernel.stores:
        value = em.expr(s.value)
        out = next(b for b in kernel.outputs if b.name == s.buffer)
        em.lines.append(f"    tl.store({s.buffer}_ptr + ({em.address(s.index)}), "
                        f"{_to(value, out.dtype)}, mask=xmask)")
    return lines + em.lines


def _to(code: str, dtype: str) -> str:
    """``code`` (a value of the tile, or a constant literal: a store of zeros, say) as ``dtype``."""
    if not code.isidentifier() or code in ("True", "False"):  # a Python literal has no .to()
        return f"tl.cast({code} != 0, tl.int1)" if dtype == "bool" else f"tl.cast({code}, {TL_DTYPES[dtype]})"
    return f"({code} != 0)" if dtype == "bool" else f"{code}.to({TL_DTYPES[dtype]})"


def _row_prelude(kernel: Kernel) -> tuple[list[str], dict[Var, str]]:
    rows = max(kernel.parallel_size, 1)
    pid = "tl.program_id(0).to(tl.int64)" if _needs_int64(kernel) else "tl.program_id(0)"
    lines = [f"    pindex = {pid} * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]", f"    pmask = pindex < {rows}"]
    dec, codes = _decompose("pindex", kernel.parallel)
    return lines + dec, codes


def _chunk_vars(kernel: Kernel, indent: str, start: str) -> tuple[list[str], dict[Var, str]]:
    rindex = f"{start} + tl.arange(0, BLOCK_R)[None, :]"
    if _needs_int64(kernel):  # stride * position can pass 2**31 on the reduce axis too
        rindex = f"({rindex}).to(tl.int64)"
    lines = [f"{indent}rindex = {rindex}", f"{indent}rmask = rindex < {kernel.reduce_size}"]
    dec, codes = _decompose("rindex", kernel.reduce)
    return lines + [indent + d.strip() for d in dec], codes


def _reduce_call(op: str, acc: str) -> str:
    fn = {"sum": "tl.sum", "max": "tl.max", "min": "tl.min"}.get(op)
    if fn is None:
        return f"tl.reduce({acc}, 1, _qm_mul_combine, keep_dims=True)"
    return f"{fn}({acc}, axis=1, keep_dims=True)"


def _render_reduction(kernel: Kernel, config: KernelConfig) -> list[str]:
    lines, pcodes = _row_prelude(kernel)
    refs: dict[str, str] = {}
    length = kernel.reduce_size
    if config.strategy == "one_pass":
        chunk, rcodes = _chunk_vars(kernel, "    ", "0")
        lines += chunk
        em = _Emitter({**pcodes, **rcodes}, "pmask & rmask", "    ", _tile_axes(kernel), refs)
        for r in kernel.reductions:
            val = em.expr(r.value)
            name = f"red_{r.name}"
            em.lines += _finish_reduction(r, val, name, "    ", "pmask & rmask", "rindex")
            refs[r.name] = name
        for s in kernel.stores:
            value = em.expr(s.value)
            out = next(b for b in kernel.outputs if b.name == s.buffer)
            mask = "pmask" if s.row else "pmask & rmask"
            address = em.address(s.index, row=s.row)
            if s.row and (s.index.variables() & set(kernel.reduce)):
                raise CodegenError("a per-row store indexed by the reduce axes")
            em.lines.append(f"    tl.store({s.buffer}_ptr + ({address}), {_to(value, out.dtype)}, mask={mask})")
        return lines + em.lines
    online = _online_split(kernel) if config.strategy == "online" else None
    welford = _welford_split(kernel) if config.strategy == "online" else None
    todo = list(kernel.reductions)
    if online is not None:
        lines += _online_loop(kernel, *online, pcodes, refs)
        todo = todo[2:]
    elif welford is not None:
        lines += _welford_loop(kernel, *welford, pcodes, refs)
        todo = todo[2:]
    for r in todo:
        lines += _looped_reduction(kernel, r, pcodes, refs)
    row_em = _Emitter(pcodes, "pmask", "    ", _tile_axes(kernel)[:1], refs, prefix="s")
    for s in kernel.stores:
        if s.row:
            value = row_em.expr(s.value)
            out = next(b for b in kernel.outputs if b.name == s.buffer)
            row_em.lines.append(f"    tl.store({s.buffer}_ptr + ({row_em.address(s.index)}), {_to(value, out.dtype)}, mask=pmask)")
    lines += row_em.lines
    elem = [s for s in kernel.stores if not s.row]
    if elem:
        lines.append(f"    for roff in range(0, {length}, BLOCK_R):")
        chunk, rcodes = _chunk_vars(kernel, "        ", "roff")
        lines += chunk
        em = _Emitter({**pcodes, **rcodes}, "pmask & rmask", "        ", _tile_axes(kernel), refs)
        for s in elem:
            value = em.expr(s.value)
            out = next(b for b in kernel.outputs if b.name == s.buffer)
            em.lines.append(f"        tl.store({s.buffer}_ptr + ({em.address(s.index)}), {_to(value, out.dtype)}, mask=pmask & rmask)")
        lines += em.lines
    return lines


def _finish_reduction(r, val: str, name: str, indent: str, mask: str, rindex: str) -> list[str]:
    """Reduce a [BLOCK_P, BLOCK_R] tile ``val`` (one pass) into ``name`` of shape [BLOCK_P, 1]."""
    if r.op in ("argmax", "argmin"):
        base = "max" if r.op == "argmax" else "min"
        neutral = _neutral(base, r.value.dtype)
        return [f"{indent}{name}_v = tl.where({mask}, {val}, {neutral})",
                f"{indent}{name}_m = tl.{base}({name}_v, axis=1, keep_dims=True)",
                f"{indent}{name} = tl.min(tl.where({name}_v == {name}_m, {rindex}, {2**31 - 1}), axis=1, keep_dims=True).to(tl.int64)"]
    neutral = _neutral(r.op, r.dtype)
    return [f"{indent}{name}_v = tl.where({mask}, {val}, {neutral})",
            f"{indent}{name} = {_reduce_call(r.op, name + '_v')}"]


def _chunk_loop(kernel: Kernel, value: Expr, pcodes, refs, name: str, stop: int | str | None = None,
                start: str = "roff") -> tuple[list[str], str]:
    """The ``for roff`` header of a loop over the reduce axis in BLOCK_R chunks, the chunk's index
    lines and the lines computing ``value`` on the chunk; and the code of that value. The loop's
    temporaries are named after ``name`` (the reduction it computes), so no two loops share one."""
    lines = [f"    for roff in range(0, {stop or kernel.reduce_size}, BLOCK_R):"]
    chunk, rcodes = _chunk_vars(kernel, "        ", start)
    em = _Emitter({**pcodes, **rcodes}, "pmask & rmask", "        ", _tile_axes(kernel), refs, prefix=f"{name}_t")
    code = em.expr(value)
    return lines + chunk + em.lines, code


def _looped_reduction(kernel: Kernel, r, pcodes, refs, stop: int | str | None = None, start: str = "roff") -> list[str]:
    name = f"red_{r.name}"
    dt = TL_DTYPES[r.dtype if r.op not in ("argmax", "argmin") else r.value.dtype]
    lines = []
    if r.op in ("argmax", "argmin"):
        base = "max" if r.op == "argmax" else "min"
        neutral = _neutral(base, r.value.dtype)
        cmp = ">" if base == "max" else "<"
        lines += [f"    {name}_acc = tl.full([BLOCK_P, BLOCK_R], {neutral}, {dt})",
                  f"    {name}_idx = tl.full([BLOCK_P, BLOCK_R], {2**31 - 1}, tl.int32)"]
    else:
        lines.append(f"    {name}_acc = tl.full([BLOCK_P, BLOCK_R], {_neutral(r.op, r.dtype)}, {dt})")
    loop, val = _chunk_loop(kernel, r.value, pcodes, refs, name, stop, start)
    lines += loop
    if r.op in ("argmax", "argmin"):
        base = "max" if r.op == "argmax" else "min"
        cmp = ">" if base == "max" else "<"
        lines += [f"        {name}_v = tl.where(pmask & rmask, {val}, {_neutral(base, r.value.dtype)})",
                  f"        {name}_take = {name}_v {cmp} {name}_acc",
                  f"        {name}_acc = tl.where({name}_take, {name}_v, {name}_acc)",
                  f"        {name}_idx = tl.where({name}_take, rindex, {name}_idx)",
                  f"    {name}_m = tl.{base}({name}_acc, axis=1, keep_dims=True)",
                  f"    {name} = tl.min(tl.where({name}_acc == {name}_m, {name}_idx, {2**31 - 1}), axis=1, keep_dims=True).to(tl.int64)"]
    else:
        combine = {"sum": f"{name}_acc + {name}_v", "prod": f"{name}_acc * {name}_v",
                   "max": f"tl.maximum({name}_acc, {name}_v)", "min": f"tl.minimum({name}_acc, {name}_v)"}[r.op]
        lines += [f"        {name}_v = tl.where(pmask & rmask, {val}, {_neutral(r.op, r.dtype)})",
                  f"        {name}_acc = {combine}",
                  f"    {name} = {_reduce_call(r.op, name + '_acc')}"]
    refs[r.name] = name
    return lines


def _online_loop(kernel: Kernel, m, s, pcodes, refs) -> list[str]:
    """max and sum(exp(x - max)) in one pass: rescale the running sum when the max grows."""
    mn, sn = f"red_{m.name}", f"red_{s.name}"
    lines = [f"    {mn}_acc = tl.full([BLOCK_P, BLOCK_R], -float(\"inf\"), tl.float32)",
             f"    {sn}_acc = tl.zeros([BLOCK_P, BLOCK_R], tl.float32)"]
    loop, x = _chunk_loop(kernel, m.value, pcodes, refs, mn)
    lines += loop
    lines += [f"        {mn}_x = tl.where(pmask & rmask, {x}, -float(\"inf\"))",
              f"        {mn}_new = tl.maximum({mn}_acc, {mn}_x)",
              f"        {mn}_safe = tl.where({mn}_new == -float(\"inf\"), 0.0, {mn}_new)",
              f"        {sn}_acc = {sn}_acc * tl.exp({mn}_acc - {mn}_safe) + tl.exp({mn}_x - {mn}_safe)",
              f"        {mn}_acc = {mn}_new",
              f"    {mn} = tl.max({mn}_acc, axis=1, keep_dims=True)",
              f"    {mn}_safe = tl.where({mn} == -float(\"inf\"), 0.0, {mn})",
              f"    {mn}_lane = tl.where({mn}_acc == -float(\"inf\"), 0.0, {mn}_acc)",
              f"    {sn} = tl.sum({sn}_acc * tl.exp({mn}_lane - {mn}_safe), axis=1, keep_dims=True)"]
    refs[m.name] = mn
    refs[s.name] = sn
    return lines


def _welford_loop(kernel: Kernel, total, squares, pcodes, refs, stop: int | str | None = None,
                  start: str = "roff") -> list[str]:
    """sum(e) and sum((e - mean)^2) in one pass: per-lane running mean and squared deviations
    (Welford), merged across lanes at the end (Chan et al.); ``tn_w`` is the count of elements."""
    tn, qn = f"red_{total.name}", f"red_{squares.name}"
    lines = [f"    {tn}_mean = tl.zeros([BLOCK_P, BLOCK_R], tl.float32)",
             f"    {tn}_m2 = tl.zeros([BLOCK_P, BLOCK_R], tl.float32)",
             f"    {tn}_w = tl.zeros([BLOCK_P, BLOCK_R], tl.float32)"]
    loop, x = _chunk_loop(kernel, total.value, pcodes, refs, tn, stop, start)
    lines += loop
    lines += [f"        {tn}_x = {x}",
              f"        {tn}_w = {tn}_w + tl.where(pmask & rmask, 1.0, 0.0)",
              f"        {tn}_d = {tn}_x - {tn}_mean",
              f"        {tn}_mean = {tn}_mean + tl.where(pmask & rmask, {tn}_d / tl.maximum({tn}_w, 1.0), 0.0)",
              f"        {tn}_m2 = {tn}_m2 + tl.where(pmask & rmask, {tn}_d * ({tn}_x - {tn}_mean), 0.0)",
              f"    {tn}_mean, {qn}, {tn}_w = tl.reduce(({tn}_mean, {tn}_m2, {tn}_w), 1, _qm_welford_combine, "
              "keep_dims=True)",
              f"    {tn} = {tn}_mean * {kernel.reduce_size}"]
    refs[total.name] = tn
    refs[squares.name] = qn
    return lines


def _render_scan(kernel: Kernel, config: KernelConfig) -> list[str]:
    if len(kernel.reduce) != 1:
        raise CodegenError("a scan over several axes")
    (scan,) = kernel.scans
    lines, pcodes = _row_prelude(kernel)
    fn = "tl.cumsum" if scan.op == "sum" else "tl.cumprod"
    neutral = _neutral(scan.op, scan.dtype)
    dt = TL_DTYPES[scan.dtype]
    name = f"scan_{scan.name}"
    one_pass = config.strategy == "one_pass"
    indent = "    " if one_pass else "        "
    if not one_pass:
        lines.append(f"    {name}_carry = tl.full([BLOCK_P, 1], {neutral}, {dt})")
        lines.append(f"    for roff in range(0, {kernel.reduce_size}, BLOCK_R):")
    chunk, rcodes = _chunk_vars(kernel, indent, "0" if one_pass else "roff")
    lines += chunk
    refs = {scan.name: name}
    em = _Emitter({**pcodes, **rcodes}, "pmask & rmask", indent, _tile_axes(kernel), refs)
    val = em.expr(scan.value)
    em.lines.append(f"{indent}{name}_v = tl.where(pmask & rmask, {val}, {neutral})")
    combine = "+" if scan.op == "sum" else "*"
    if one_pass:
        em.lines.append(f"{indent}{name} = {fn}({name}_v, axis=1)")
    else:
        em.lines.append(f"{indent}{name} = {fn}({name}_v, axis=1) {combine} {name}_carry")
    for s in kernel.stores:
        value = em.expr(s.value)
        out = next(b for b in kernel.outputs if b.name == s.buffer)
        em.lines.append(f"{indent}tl.store({s.buffer}_ptr + ({em.address(s.index)}), {_to(value, out.dtype)}, mask=pmask & rmask)")
    if not one_pass:
        red = "tl.sum" if scan.op == "sum" else None
        if red:
            em.lines.append(f"{indent}{name}_carry = {name}_carry + tl.sum({name}_v, axis=1, keep_dims=True)")
        else:
            em.lines.append(f"{indent}{name}_carry = {name}_carry * tl.reduce({name}_v, 1, _qm_mul_combine, keep_dims=True)")
    return lines + em.lines


def _segment_length(length: int, segments: int, block_r: int) -> str:
    """The reduce-axis length each of ``segments`` programs walks: a whole number of ``block_r`` chunks, as
    code of ``length`` (``ceil(length / (segments * block_r)) * block_r``), so that a shape-generic file
    (``generalize``) sees the length itself, a polynomial of the sizes, and not its rounded value."""
    return f"(({length} + {segments * block_r - 1}) // {segments * block_r} * {block_r})"


def _render_split(kernel: Kernel, config: KernelConfig) -> Rendered:
    """Split each row's reduction across ``block_p`` programs (partials), then a final per-row pass."""
    segments, rows, length = config.block_p, max(kernel.parallel_size, 1), kernel.reduce_size
    chunk = _segment_length(length, segments, config.block_r)
    parts = [f"part_{r.name}" for r in kernel.reductions]
    ins = [f"{b.name}_ptr" for b in kernel.inputs]
    outs = [f"{b.name}_ptr" for b in kernel.outputs]
    part_ptrs = [f"{p}_ptr" for p in parts]
    dec, pcodes = _decompose("pindex", kernel.parallel)
    lines = [
        "@triton.jit",
        f"def {kernel.name}_partial({', '.join(ins + part_ptrs)}, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):",
        f"    seg = tl.program_id(0) % {segments}",
        f"    pindex = tl.program_id(0) // {segments} + tl.arange(0, BLOCK_P)[:, None]",
        f"    pmask = pindex < {rows}",
    ] + dec
    refs: dict[str, str] = {}
    for r, part in zip(kernel.reductions, parts):
        lines += _looped_reduction(kernel, r, pcodes, refs, stop=chunk, start=f"seg * {chunk} + roff")
        lines.append(f"    tl.store({part}_ptr + tl.program_id(0) + 0 * pindex, red_{r.name})")
    width = _next_pow2(segments)
    final = [
        "", "", "@triton.jit",
        f"def {kernel.name}({', '.join(ins + part_ptrs + outs)}, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):",
        "    pindex = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]",
        f"    pmask = pindex < {rows}",
        f"    seg = tl.arange(0, {width})[None, :]",
    ] + dec
    final_refs: dict[str, str] = {}
    for r, part in zip(kernel.reductions, parts):
        neutral = _neutral(r.op, r.dtype)
        final.append(f"    red_{r.name}_p = tl.load({part}_ptr + pindex * {segments} + seg, "
                     f"mask=pmask & (seg < {segments}), other={neutral})")
        final.append(f"    red_{r.name} = {_reduce_call(r.op, f'red_{r.name}_p')}")
        final_refs[r.name] = f"red_{r.name}"
    row_em = _Emitter(pcodes, "pmask", "    ", _tile_axes(kernel)[:1], final_refs, prefix="s")
    for s in kernel.stores:
        value = row_em.expr(s.value)
        out = next(b for b in kernel.outputs if b.name == s.buffer)
        row_em.lines.append(f"    tl.store({s.buffer}_ptr + ({row_em.address(s.index, row=True)}), "
                            f"{_to(value, out.dtype)}, mask=pmask)")
    final += row_em.lines
    launcher = f"_launch_{kernel.name}"
    params = [b.name for b in kernel.inputs + kernel.outputs]
    dev = kernel.outputs[0].name
    block_rows = min(64, _next_pow2(rows))
    launch = [f"def {launcher}({', '.join(params)}):"]
    for r, part in zip(kernel.reductions, parts):
        launch.append(f"    {part} = torch.empty(({rows} * {segments},), dtype=torch.{r.dtype}, device={dev}.device)")
    in_names = [b.name for b in kernel.inputs]
    partial_consts, final_consts = {"BLOCK_P": 1, "BLOCK_R": config.block_r}, {"BLOCK_P": block_rows, "BLOCK_R": 1}
    launch += launch_lines(f"{kernel.name}_partial", f"{rows} * {segments}", in_names + parts,
                           partial_consts, config.num_warps, config.num_stages)
    launch += launch_lines(kernel.name, f"-(-{rows} // {block_rows})", in_names + parts + [b.name for b in kernel.outputs],
                           final_consts, 4, 1)
    in_dtypes, part_dtypes = [b.dtype for b in kernel.inputs], [r.dtype for r in kernel.reductions]
    ahead = [ahead_line(f"{kernel.name}_partial", in_dtypes + part_dtypes, partial_consts, config.num_warps,
                        config.num_stages),
             ahead_line(kernel.name, in_dtypes + part_dtypes + [b.dtype for b in kernel.outputs], final_consts, 4, 1)]
    source = "\n".join(lines + final) + "\n\n\n" + "\n".join(launch) + "\n"
    return Rendered(kernel.name, source, launcher, config, tuple(ahead))


def _render_welford_split(kernel: Kernel, config: KernelConfig) -> Rendered:
    """Mean and variance pairs split across ``block_p`` segments per row, in two kernels and three passes
    over the data: ``_partial`` reads each segment once into (mean, M2, count) per value by Welford's method; the
    main kernel, one program per (rows, segment) again (``split_rows`` rows side by side), merges its row's partials (Chan et al.: tiny),
    writes the row outputs once (segment 0: running statistics, say) and its segment's element-wise
    outputs (the normalised tensor and its epilogue): one more read and one write."""
    segments, rows, tile_rows = config.block_p, max(kernel.parallel_size, 1), split_rows(kernel)
    programs = f"-(-{rows} // {tile_rows}) * {segments}"
    chunk = _segment_length(kernel.reduce_size, segments, config.block_r)
    groups = _welford_pairs(kernel)
    parts = [f"part{i}_{k}" for i in range(len(groups)) for k in ("mean", "m2", "w")]
    ins = [f"{b.name}_ptr" for b in kernel.inputs]
    outs = [f"{b.name}_ptr" for b in kernel.outputs]
    part_ptrs = [f"{p}_ptr" for p in parts]
    dec, pcodes = _decompose("pindex", kernel.parallel)
    pid = "tl.program_id(0).to(tl.int64)" if _needs_int64(kernel) else "tl.program_id(0)"
    prelude = [f"    seg = {pid} % {segments}",
               f"    pindex = ({pid} // {segments}) * BLOCK_P + tl.arange(0, BLOCK_P)[:, None]",
               f"    pmask = pindex < {rows}"] + dec
    lines = ["@triton.jit",
             f"def {kernel.name}_partial({', '.join(ins + part_ptrs)}, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):"]
    lines += prelude
    width = _next_pow2(segments)
    final = ["", "", "@triton.jit",
             f"def {kernel.name}({', '.join(ins + part_ptrs + outs)}, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):"]
    final += prelude + [f"    pseg = pindex * {segments} + tl.arange(0, {width})[None, :]",
                        f"    pseg_mask = pmask & (tl.arange(0, {width})[None, :] < {segments})"]
    refs: dict[str, str] = {}
    for i, ((total, squares), pairs) in enumerate(groups):
        tn, qn = f"red_{total.name}", f"red_{squares.name}"
        mine = parts[3 * i: 3 * i + 3]
        lines += _welford_loop(kernel, total, squares, pcodes, {}, stop=chunk, start=f"seg * {chunk} + roff")
        for part, value in zip(mine, (f"{tn}_mean", qn, f"{tn}_w")):
            lines.append(f"    tl.store({part}_ptr + pindex * {segments} + seg, {value}, mask=pmask)")
        final += [f"    {tn}_{p} = tl.load({part}_ptr + pseg, mask=pseg_mask, other=0.0)"
                  for p, part in zip(("pmean", "pm2", "pw"), mine)]
        final += [f"    {tn}_mean, {qn}, {tn}_w = tl.reduce(({tn}_pmean, {tn}_pm2, {tn}_pw), 1, "
                  "_qm_welford_combine, keep_dims=True)",
                  f"    {tn} = {tn}_mean * {kernel.reduce_size}"]
        refs.update({name: ref for t, q in pairs for name, ref in ((t.name, tn), (q.name, qn))})
    final.append("    first = pmask & ((seg + 0 * pindex) == 0)  # the row outputs: segment 0 writes them")
    row_em = _Emitter(pcodes, "pmask", "    ", _tile_axes(kernel)[:1], refs, prefix="s")
    for s in kernel.stores:
        if s.row:
            value = row_em.expr(s.value)
            out = next(b for b in kernel.outputs if b.name == s.buffer)
            row_em.lines.append(f"    tl.store({s.buffer}_ptr + ({row_em.address(s.index, row=True)}), "
                                f"{_to(value, out.dtype)}, mask=first)")
    final += row_em.lines
    elem = [s for s in kernel.stores if not s.row]
    if elem:
        final.append(f"    for roff in range(0, {chunk}, BLOCK_R):")
        body, rcodes = _chunk_vars(kernel, "        ", f"seg * {chunk} + roff")
        final += body
        em = _Emitter({**pcodes, **rcodes}, "pmask & rmask", "        ", _tile_axes(kernel), refs)
        for s in elem:
            value = em.expr(s.value)
            out = next(b for b in kernel.outputs if b.name == s.buffer)
            em.lines.append(f"        tl.store({s.buffer}_ptr + ({em.address(s.index)}), {_to(value, out.dtype)}, "
                            "mask=pmask & rmask)")
        final += em.lines
    launcher = f"_launch_{kernel.name}"
    params = [b.name for b in kernel.inputs + kernel.outputs]
    dev = kernel.outputs[0].name
    launch = [f"def {launcher}({', '.join(params)}):"]
    launch += [f"    {p} = torch.empty(({rows * segments},), dtype=torch.float32, device={dev}.device)" for p in parts]
    in_names = [b.name for b in kernel.inputs]
    consts = {"BLOCK_P": tile_rows, "BLOCK_R": config.block_r}
    launch += launch_lines(f"{kernel.name}_partial", programs, in_names + parts, consts,
                           config.num_warps, config.num_stages)
    launch += launch_lines(kernel.name, programs, in_names + parts + [b.name for b in kernel.outputs],
                           consts, config.num_warps, config.num_stages)
    in_dtypes, part_dtypes = [b.dtype for b in kernel.inputs], ["float32"] * len(parts)
    ahead = [ahead_line(f"{kernel.name}_partial", in_dtypes + part_dtypes, consts, config.num_warps, config.num_stages),
             ahead_line(kernel.name, in_dtypes + part_dtypes + [b.dtype for b in kernel.outputs], consts,
                        config.num_warps, config.num_stages)]
    source = "\n".join(lines + final) + "\n\n\n" + "\n".join(launch) + "\n"
    return Rendered(kernel.name, source, launcher, config, tuple(ahead))
