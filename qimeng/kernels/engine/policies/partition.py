"""A fusion pass's working state: a schedule's kernel groups, merged in place.

Applying a fusion step to a ``Schedule`` rebuilds every group and the node index (the schedule is
immutable), which made a pass over a deep network quadratic in its depth. A ``Partition`` merges two
groups in the time of their own size, can take a merge back, and gives the ``Schedule`` the applied
steps would give (``schedule``), built once at the end of the pass.
"""

from __future__ import annotations

from dataclasses import replace

from qimeng.kernels.engine.steps import KernelConfig, Schedule


class Partition:
    """``schedule``'s groups (tuples of node names in graph order) by node, mutable; configs and the rest
    of the schedule as they were (a merged group takes the config of its first node, as ``Schedule`` does)."""

    def __init__(self, schedule: Schedule, order: dict[str, int]):
        self._base = schedule
        self._order = order
        self._configs = dict(schedule.configs)
        self._group = {n: g for g in schedule.groups for n in g}

    def group_of(self, node: str) -> tuple[str, ...] | None:
        return self._group.get(node)

    def config(self, group: tuple[str, ...]) -> KernelConfig:
        return self._configs.get(group[0], KernelConfig())

    def merge(self, first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
        """Put two groups into one (in graph order) and return it."""
        merged = tuple(sorted(set(first) | set(second), key=self._order.__getitem__))
        for n in merged:
            self._group[n] = merged
        return merged

    def restore(self, *groups: tuple[str, ...]) -> None:
        """Take back a merge: ``groups`` are again groups of their own."""
        for group in groups:
            for n in group:
                self._group[n] = group

    def groups(self) -> list[tuple[str, ...]]:
        """The groups, ordered by their first node."""
        return sorted(set(self._group.values()), key=lambda g: self._order[g[0]])

    def schedule(self) -> Schedule:
        """The schedule with these groups (what the merges' steps, applied one by one, make of the original)."""
        return replace(self._base, groups=tuple(self.groups()))
