"""Circuit loads from the chargers' own readings, through their phase rotations, when a
circuit has no meter."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.core.charger import ChargerReading, CpState
from gateway.core.site import ChargerSpec, Site
from gateway.monitoring.circuit_load import CircuitLoads
from gateway.southbound import Southbound


def reading(amps: tuple[float, float, float]) -> ChargerReading:
    return ChargerReading(CpState.C2, True, amps, (230.0,) * 3, sum(amps) * 230.0, 0.0, 16.0)


def test_measured_and_allocated_follow_rotations_up_the_tree() -> None:
    config = parse_config(
        {
            "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
            "chargers": [
                # Three-phase, wired L1->S, L2->T, L3->R, under the board.
                {"id": "A", "host": "192.0.2.1", "circuit": "board", "phase_rotation": "STR"},
                # Single-phase on grid phase T (L3), under the root.
                {"id": "B", "host": "192.0.2.2", "phases": 1, "phase_rotation": "T"},
            ],
            "circuits": [
                {"id": "grid", "max_current_a": 63},
                {"id": "board", "parent": "grid", "max_current_a": [32, 32, 25]},
            ],
        }
    )
    southbound = Southbound.build(config)
    site = Site()
    for charger in config.chargers:
        site.add_charger(
            ChargerSpec(charger.id, max_current_a=16.0, phases=charger.phases),
            southbound.drivers[charger.id],
        )
    site.connector("A").observe(reading((10.0, 11.0, 12.0)))
    site.connector("B").observe(reading((7.0, 0.0, 0.0)))
    site.set_allocated_current("A", 16.0)
    site.set_allocated_current("B", 8.0)

    loads = {load.circuit_id: load for load in CircuitLoads(config).read(site, {})}
    board, grid = loads["board"], loads["grid"]
    # A's L1 (10 A) is on grid S (L2), its L2 on T (L3), its L3 on R (L1).
    assert board.measured_a == (12.0, 10.0, 11.0)
    assert board.allocated_a == (16.0, 16.0, 16.0)
    assert board.limit_a == (32.0, 32.0, 25.0)
    assert not board.metered
    assert grid.measured_a == (12.0, 10.0, 18.0)
    assert grid.allocated_a == (16.0, 16.0, 24.0)
    assert board.worst_share() == (11.0 / 25.0, 2)  # L3: the smaller fuse
    # An unreachable charger's last reading no longer counts as load.
    site.connector("B").observe_unreachable()
    (grid_now,) = [x for x in CircuitLoads(config).read(site, {}) if x.circuit_id == "grid"]
    assert grid_now.measured_a == (12.0, 10.0, 11.0)
