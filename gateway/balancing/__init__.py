"""Site load balancing: the fuse tree, the setpoint planner, the controller and the loop.

`topology` (fuse tree, phase maps, failsafe sums) and `planner` (what to write when) are pure;
`controller` adds the Rust `BalancingSolver`; `loop` is the asyncio shell over the `Site`.
"""

from gateway.balancing.controller import (
    BalancedCharger,
    BalancingController,
    BalancingStatus,
    ChargerSnapshot,
)
from gateway.balancing.loop import BalancingLoop
from gateway.balancing.planner import (
    ChargerLimits,
    PlannerSettings,
    SetpointPlanner,
    SetpointWrite,
    WriteKind,
)
from gateway.balancing.topology import ChargerPlacement, Circuit, grid_phases, overloads

__all__ = [
    "BalancedCharger",
    "BalancingController",
    "BalancingLoop",
    "BalancingStatus",
    "ChargerLimits",
    "ChargerPlacement",
    "ChargerSnapshot",
    "Circuit",
    "PlannerSettings",
    "SetpointPlanner",
    "SetpointWrite",
    "WriteKind",
    "grid_phases",
    "overloads",
]
