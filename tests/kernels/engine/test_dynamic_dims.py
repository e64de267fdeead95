"""Which input sizes are proposed as dynamic, how ``--dynamic`` specs parse, how inputs are resized."""

import pytest
import torch

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.capture import TensorMeta
from qimeng.kernels.engine.dynamic_dims import parse_spec, propose, resized

X = TensorMeta((8, 16, 32), (512, 32, 1), "float32")
MASK = TensorMeta((8, 16), (16, 1), "int64")
W = TensorMeta((5, 32), (32, 1), "float32")


def test_batch_and_seq_are_proposed_by_default_on_the_arguments_that_carry_them():
    dims = {d.name: d for d in propose([X, MASK, W, 0.5])}
    assert dims["batch"].sites == ((0, 0), (1, 0)) and dims["batch"].captured == 8  # W's 5 rows: not the batch
    assert dims["seq"].sites == ((0, 1), (1, 1)) and dims["seq"].captured == 16
    assert (dims["batch"].low, dims["batch"].high) == (1, 64)
    assert dims["batch"].symbol == "qm_batch"


def test_static_proposes_nothing_and_specs_set_ranges_or_name_more():
    assert propose([X], static=True) == []
    dims = {d.name: d for d in propose([X, W], ("batch=2:100", "1.0=1:9"))}
    assert (dims["batch"].low, dims["batch"].high) == (2, 100)
    assert dims["1.0"].sites == ((1, 0),) and dims["1.0"].captured == 5
    (only,) = propose([X], ("0.2=16:64",), static=True)
    assert only.sites == ((0, 2),) and only.symbol == "qm_0_2"


@pytest.mark.parametrize("spec, message", [("batch", "expected NAME=MIN:MAX"), ("batch=9:2", "MIN <= MAX"),
                                           ("batch=16:32", "captured size 8"), ("3.0=1:4", "no axis"),
                                           ("0.5=1:4", "no axis")])
def test_bad_specs_are_bad_input(spec, message):
    with pytest.raises(BadInput, match=message):
        propose([X], (spec,))


def test_parse_spec():
    assert parse_spec(" seq = 1 : 4096 ") == ("seq", 1, 4096)


def test_resized_repeats_entries_cyclically_along_each_site():
    x = torch.arange(6).reshape(3, 2)
    ids = torch.tensor([[4, 1], [0, 2], [3, 3]])
    (batch,) = propose([TensorMeta((3, 2), (2, 1), "int64")] * 2, static=True, specs=("batch=1:8",))
    out = resized([x, ids], [batch], {"batch": 5})
    assert out[0].tolist() == [[0, 1], [2, 3], [4, 5], [0, 1], [2, 3]]
    assert out[1][:, 0].tolist() == [4, 0, 3, 4, 0]  # index values stay valid


def test_optimize_command_rejects_a_bad_dynamic_spec_before_any_work(tmp_path, capsys):
    from qimeng.kernels.engine.optimize_cli import optimize_command

    problem = tmp_path / "p.py"
    problem.write_text("import torch\nclass Model(torch.nn.Module):\n    pass\ndef get_inputs():\n    return []\n")
    code = optimize_command(problem, tmp_path / "out", device="cpu", budget=1, precision="strict", small=None,
                            use_store=False, dynamic=("batch=4",))
    assert code == 2 and not (tmp_path / "out").exists()
    err = capsys.readouterr().err
    assert "--dynamic 'batch=4': expected NAME=MIN:MAX" in err and "Traceback" not in err
