"""Whether the formal model (one SAT step per rising edge of the clock input) represents a design exactly.

The miter steps every flip-flop once per time step and ``async2sync`` holds asynchronous controls for a
whole step. That is exact for flip-flops on the rising edge of the declared clock input whose asynchronous
controls are input ports. Anything else (falling edges, other or derived clocks, latches, global-clock
flip-flops, unmapped memories) is listed here, and simulation decides instead.
"""

from __future__ import annotations

from qimeng.hardware.ports import Design, StateCell

LATCH_TYPES = ("$dlatch", "$adlatch", "$dlatchsr", "$sr")


def formal_limits(designs: dict[str, Design], clock: str | None) -> list[str]:
    """Why the formal model is not exact for these designs (role -> design); empty when it is."""
    limits = []
    for role, design in designs.items():
        for cell in design.state_cells:
            reason = _cell_limit(cell, clock)
            if reason:
                limits.append(f"{role}: {reason}")
    return limits


def _cell_limit(cell: StateCell, clock: str | None) -> str | None:
    what = f"{cell.name} ({cell.type})"
    if cell.type in LATCH_TYPES:
        return f"latch {what}, enable {', '.join(cell.asynchronous) or 'unknown'}"
    if cell.type == "$ff" or "$mem" in cell.type:
        return f"{what} has no clock the model can step"
    if clock is None:
        return f"flip-flop {what} clocked by {cell.clock}, and no clock input is known (use --clock)"
    if cell.clock != clock:
        return f"flip-flop {what} is clocked by {cell.clock}, not by the clock input {clock}"
    if not cell.posedge:
        return f"flip-flop {what} is clocked on the falling edge of {clock}"
    for control in cell.asynchronous:
        driver = control.split("=", 1)[1]
        if driver.startswith(("internal", "constant")) or ", " in driver:
            return f"flip-flop {what} has asynchronous control {control}, not an input port"
    return None
