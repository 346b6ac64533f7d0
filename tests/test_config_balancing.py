"""The fuse tree and the balancing keys of the configuration: errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.runtime import Gateway

HEAD = """
[upstream]
url = "ws://csms.example.com/ocpp"
"""

TREE = """
[[circuits]]
id = "grid"
max_current_a = 63
max_power_w = 40000

[[circuits]]
id = "board-A"
parent = "grid"
max_current_a = [40, 40, 32]
"""


def charger(number: int, **keys: object) -> str:
    lines = [f'[[chargers]]\nid = "CP-{number}"\nhost = "192.0.2.{number}"']
    for key, value in keys.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        else:
            lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    return "\n".join(lines) + "\n"


def load(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "evgw.toml"
    path.write_text(HEAD + text, encoding="utf-8")
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_a_valid_tree_with_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        TREE
        + charger(1, circuit="board-A", failsafe_current_a=8.0)
        + charger(2, phases=1, phase_rotation="T", priority=2)
        + "[balancing]\ninterval_s = 1\nmin_run_s = 60\n",
    )
    assert config.root_circuit == "grid"
    first, second = config.chargers
    assert (first.circuit, first.min_current_a, first.watchdog_timeout_s) == ("board-A", 6.0, 60)
    assert (second.circuit, second.effective_rotation, second.priority) == (None, "T", 2)
    assert config.circuits[1].max_current_a == (40.0, 40.0, 32.0)
    assert (config.balancing.interval_s, config.balancing.min_run_s) == (1.0, 60.0)


def test_failsafe_currents_over_a_fuse_are_refused_per_grid_phase(tmp_path: Path) -> None:
    # Two three-phase chargers at 16 A and one single-phase on R: 48 A on L1 only.
    text = (
        TREE
        + charger(1, circuit="board-A", failsafe_current_a=16.0)
        + charger(2, circuit="board-A", failsafe_current_a=16.0)
        + charger(3, circuit="board-A", failsafe_current_a=16.0, phases=1, phase_rotation="R")
    )
    assert problems(tmp_path, text) == [
        'circuits[1] "board-A": failsafe currents sum to 48 A on L1, over its 40 A limit'
    ]
    # On T, the board's 32 A phase: 48 A there; the other phases carry 32 A and pass.
    text = text.replace('phase_rotation = "R"', 'phase_rotation = "T"')
    assert problems(tmp_path, text) == [
        'circuits[1] "board-A": failsafe currents sum to 48 A on L3, over its 32 A limit'
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TREE.replace('parent = "grid"', 'parent = "gird"') + charger(1),
            "circuits[1].parent: unknown circuit 'gird'",
        ),
        (
            TREE.replace('parent = "grid"\n', "") + charger(1),
            "circuits[1].parent: missing, but 'grid' is already the root (only one circuit may"
            " have no parent)",
        ),
        (
            TREE + '[[circuits]]\nid = "x"\nparent = "y"\nmax_current_a = 10\n'
            '[[circuits]]\nid = "y"\nparent = "x"\nmax_current_a = 10\n' + charger(1),
            "circuits[2].parent: cycle x -> y -> x",
        ),
        (TREE + charger(1, circuit="board-B"), "chargers[0].circuit: unknown circuit 'board-B'"),
        (
            TREE + charger(1, min_current_a=20.0),
            "chargers[0].min_current_a: 20 A is above max_current_a 16 A",
        ),
        (
            TREE + charger(1, phase_rotation="R"),
            "chargers[0].phase_rotation: must be one of RST, RTS, SRT, STR, TRS, TSR for a"
            " 3-phase charger, got 'R'",
        ),
        (
            TREE + charger(1, failsafe_current_a=3.0),
            "chargers[0].failsafe_current_a: must be 0 (stop) or at least 6 A (the pilot's"
            " floor), got 3",
        ),
        (
            TREE + charger(1) + "[balancing]\ninterval_s = 10\n",
            "balancing.interval_s: must be a number between 1 and 5, got 10",
        ),
        (charger(1, circuit="grid"), "chargers[0].circuit: no [[circuits]] are configured"),
        (
            TREE.replace("[40, 40, 32]", "[40, 40]") + charger(1),
            "circuits[1].max_current_a: must be a number or a list of 3 (L1, L2, L3), got [40, 40]",
        ),
    ],
)
def test_balancing_errors_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in problems(tmp_path, text)


def test_phase_switching_and_usual_needs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        charger(
            1,
            profile="keba-p40",
            phase_switching=True,
            departure="06:30",
            energy_needed_kwh=45,
        )
        + TREE
        + "[balancing]\nphase_up_delay_s = 420\nmax_phase_switches = 2\n",
    )
    (only,) = config.chargers
    assert (only.phase_switching, only.departure, only.energy_needed_kwh) == (True, "06:30", 45.0)
    assert config.balancing.phase_up_delay_s == 420.0
    assert config.balancing.max_phase_switches == 2


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"phase_switching": "yes"},
            'chargers[0].phase_switching: must be true or false, got "yes"',
        ),
        (
            {"phase_switching": True, "phases": 1, "phase_rotation": "R"},
            "chargers[0].phase_switching: only a three-phase charger switches",
        ),
        ({"departure": "6:30"}, 'chargers[0].departure: must be a time of day "HH:MM", got "6:30"'),
        ({"departure": "24:00"}, 'chargers[0].departure: must be a time of day "HH:MM"'),
        ({"energy_needed_kwh": 0}, "chargers[0].energy_needed_kwh: must be a number between 0.1"),
    ],
)
def test_vehicle_and_phase_keys_name_the_problem(
    tmp_path: Path, keys: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, charger(1, **keys) + TREE)
    assert any(problem.startswith(expected) for problem in raised.value.problems), (
        raised.value.problems
    )


async def test_phase_switching_on_a_charger_that_cannot_is_refused_at_start(
    tmp_path: Path,
) -> None:
    config = load(
        tmp_path,
        '[gateway]\nstore = "'
        + str(tmp_path / "s.sqlite3")
        + '"\n'
        + charger(1, profile="keba-p30", phase_switching=True)
        + TREE,
    )
    with pytest.raises(ConfigError) as raised:
        await Gateway.open(config)
    assert raised.value.problems == [
        "chargers[0].phase_switching: keba-p30 cannot switch phases (its profile has no"
        " [writes.phases])"
    ]
