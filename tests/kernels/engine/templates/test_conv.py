"""The implicit-GEMM convolution source over 1-3 spatial dims, transposed or not: launched directly under the
Triton interpreter against float64 ``F.conv*`` (``conv_interp_check.py``, one subprocess), and what it
renders (the masks it needs, the taps a transposed phase walks)."""

import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.templates.conv_source import Conv, conv_source, default_blocks, grid
from qimeng.kernels.engine.templates.epilogue import Epilogue

sys.path.insert(0, str(Path(__file__).parent))
from conv_interp_check import CASES  # noqa: E402


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("conv")
    lines = interpreter(Path(__file__).with_name("conv_interp_check.py"), root, list(CASES), timeout=400)
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_convolution_matches_float64(outcomes, name):
    assert outcomes[name]["ok"], outcomes[name]


def _source(conv: Conv) -> str:
    strides = (1,) * (len(conv.size) + 2)
    return conv_source("k", conv, strides, strides, "ieee", Epilogue(), "float32", False)


def test_a_transposed_phase_walks_only_its_taps():
    up = Conv(2, 8, (5, 6), 4, (4, 4), (10, 12), (2, 2), (1, 1), (1, 1), 1, True)
    assert up.taps == (2, 2) and up.k == 8 * 4 and up.phases == 4
    assert grid(up, default_blocks(up)) == (4 * 1, 1, 1)  # 2 * 5 * 6 = 60 rows a phase: one block of 64
    source = _source(up)
    assert "for k0 in range(0, 32, BLOCK_K)" in source
    assert "ph_ok" not in source and "tap0 <" not in source  # gcd 1 and 2 | 4: every phase has every tap
    gapped = _source(Conv(1, 3, (4,), 2, (3,), (9,), (4,), (0,), (2,), 1, True))  # gcd 2: odd phases have none
    assert "ph_ok = ((o0 + 0) % 2 == 0)" in gapped and "ph_ok[:, None]" in gapped and "(tap0 < 3)" in gapped


def test_a_forward_convolution_masks_only_the_bounds_it_can_cross():
    unpadded = _source(Conv(1, 3, (8, 8), 4, (3, 3), (6, 6), (1, 1), (0, 0), (1, 1), 1))
    assert "(i0 >= 0)" not in unpadded and "(i0 < 8)" not in unpadded
    padded = _source(Conv(1, 3, (8, 8), 4, (3, 3), (8, 8), (1, 1), (1, 1), (1, 1), 1))
    assert "(i0 >= 0)" in padded and "(i1 < 8)" in padded


@pytest.mark.parametrize("transposed", [False, True])
def test_offsets_go_64_bit_past_2_to_the_31_elements(transposed):
    small = Conv(2, 4, (8, 8, 8), 4, (3, 3, 3), (8, 8, 8), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, transposed)
    big = Conv(64, 64, (32, 256, 256), 64, (3, 3, 3), (32, 256, 256), (1, 1, 1), (1, 1, 1), (1, 1, 1), 1, transposed)
    assert 64 * 64 * 32 * 256 * 256 >= 2**31
    assert ".to(tl.int64)" not in _source(small) and "tl.arange(0, BLOCK_M).to(tl.int64)" in _source(big)
