"""The attention template under the Triton interpreter against F.scaled_dot_product_attention in
float64 (one subprocess for all cases), and its argument checks."""

import sys
from pathlib import Path

import pytest
import torch

from qimeng.kernels.engine.templates.attention import attention, default_config

sys.path.insert(0, str(Path(__file__).parent))
from attention_interp_check import CASES  # noqa: E402


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("attention")
    lines = interpreter(Path(__file__).with_name("attention_interp_check.py"), root, list(CASES))
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_attention_matches_float64_sdpa(outcomes, name):
    assert outcomes[name]["ok"], outcomes[name]


def test_bad_arguments_are_refused_before_launch():
    q = torch.randn(1, 4, 8, 32)
    with pytest.raises(ValueError, match="heads"):
        attention(q, torch.randn(1, 3, 8, 32), torch.randn(1, 3, 8, 32))  # 3 does not divide 4
    with pytest.raises(ValueError, match="precision"):
        attention(q, q, q, precision="fp8")
    with pytest.raises(ValueError, match="at most 256"):
        big = torch.randn(1, 1, 4, 512)
        attention(big, big, big)


def test_wide_heads_take_smaller_tiles():
    assert default_config(256, "strict").block_m < default_config(64, "strict").block_m
