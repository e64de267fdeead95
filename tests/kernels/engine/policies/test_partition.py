"""Partition: merges and their undo on hand-made groups, against the steps' own Schedule.apply."""

from qimeng.kernels.engine.policies.partition import Partition
from qimeng.kernels.engine.steps import FusePointwise, KernelConfig, Schedule

ORDER = {n: i for i, n in enumerate("abcdef")}
START = Schedule(groups=(("a",), ("b", "d"), ("c",), ("e",), ("f",)),
                 configs=(("c", KernelConfig(block_p=64)),))


def test_merges_make_the_schedule_the_steps_make_one_by_one():
    part = Partition(START, ORDER)
    part.merge(part.group_of("c"), part.group_of("b"))
    part.merge(part.group_of("f"), part.group_of("a"))
    expected = FusePointwise("a", "f").apply(FusePointwise("b", "c").apply(START, ORDER), ORDER)
    assert part.schedule() == expected
    assert expected.groups == (("a", "f"), ("b", "c", "d"), ("e",))  # by hand: graph order inside and across
    assert part.config(part.group_of("c")) == KernelConfig()  # a merged group's config is its first node's


def test_restore_takes_a_merge_back():
    part = Partition(START, ORDER)
    merged = part.merge(("c",), ("e",))
    assert merged == ("c", "e") and part.group_of("e") == ("c", "e")
    part.restore(("c",), ("e",))
    assert part.schedule() == START
    assert part.config(("c",)) == KernelConfig(block_p=64)
