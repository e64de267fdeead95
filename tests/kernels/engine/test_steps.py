"""Macro steps: JSON round trip and their effect on a schedule."""

import json

from qimeng.kernels.engine.steps import (BlockConfig, FuseEpilogue, FuseIntoReduction, FusePointwise, FuseSiblings, KernelConfig,
                                  LowerOps, Precision, ReductionStrategy, Schedule, step_from_json)

ORDER = {n: i for i, n in enumerate(["a", "b", "c", "d"])}


def test_every_step_round_trips_through_json():
    steps = [LowerOps(("a", "b")), FusePointwise("a", "b"), FuseIntoReduction("c", ("a", "b")), FuseSiblings("a", "d"),
             FuseEpilogue("mm", ("c", "d")), ReductionStrategy("c", "online"),
             BlockConfig("c", KernelConfig("looped", 1, 2048, 8, 2, 4)), Precision("tf32")]
    for step in steps:
        assert step_from_json(json.loads(json.dumps(step.to_json()))) == step


def test_fusion_merges_groups_and_configs_follow_the_group_head():
    s = LowerOps(("a", "b", "c", "d")).apply(Schedule(), ORDER)
    assert s.groups == (("a",), ("b",), ("c",), ("d",))
    s = FusePointwise("a", "b").apply(s, ORDER)
    s = FuseIntoReduction("c", ("b",)).apply(s, ORDER)
    assert s.groups == (("a", "b", "c"), ("d",))
    s = ReductionStrategy("c", "looped").apply(s, ORDER)
    assert s.config(("a", "b", "c")).strategy == "looped"
    s = BlockConfig("b", KernelConfig(block_r=512, num_warps=8)).apply(s, ORDER)
    assert s.config(("a", "b", "c")) == KernelConfig("looped", 0, 512, 8)
    assert Precision("bf16").apply(s, ORDER).precision == "bf16"
    assert json.loads(json.dumps(s.to_json()))["groups"] == [["a", "b", "c"], ["d"]]
