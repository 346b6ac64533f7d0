"""Profile loading: every shipped profile loads; every malformed one is refused clearly."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from gateway.core.charger import CpState
from gateway.modbus.profile import (
    Confidence,
    PauseMode,
    ProfileError,
    RegisterTable,
    load_profile,
    profile_names,
)
from gateway.modbus.registers import RegisterType, WordOrder


def shipped_text(name: str) -> str:
    return (resources.files("gateway.modbus") / "profiles" / f"{name}.toml").read_text()


def test_ships_at_least_keba_and_generic() -> None:
    assert {"generic", "keba-p30"} <= set(profile_names())


@pytest.mark.parametrize("name", profile_names())
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.file == f"{name}.toml"
    for state in (CpState.A, CpState.B1, CpState.C2, CpState.F):
        assert profile.state.decode(profile.state.encode[state]) is state
    for request in profile.plan_reads(profile.reading_registers):
        assert request.count <= 125


def test_keba_profile_follows_the_reference() -> None:
    keba = load_profile("keba-p30")
    assert keba.default_unit_id == 255
    assert keba.requests.one_value_per_read
    current = keba.registers["current_l1"]
    assert (current.address, current.type, current.scale, current.unit) == (
        1008,
        RegisterType.U32,
        0.001,
        "A",
    )
    assert current.table is RegisterTable.HOLDING
    assert current.word_order is WordOrder.BIG
    assert keba.registers["energy"].scale == 0.1
    assert keba.registers["rfid"].address == 1500
    # 5016 is unverified in chargers.md §3; the flag must survive into the profile.
    assert keba.registers["set_failsafe_current"].confidence is Confidence.UNVERIFIED
    assert keba.registers["set_failsafe_timeout"].confidence is Confidence.DRIVER
    assert keba.current.register == "set_current"
    assert keba.current.pause is PauseMode.DISABLE
    assert keba.watchdog is not None
    assert (keba.watchdog.min_s, keba.watchdog.max_s) == (10, 600)
    # One value per read: every request covers exactly one register.
    plan = keba.plan_reads(keba.reading_registers)
    assert all(len(request.registers) == 1 for request in plan)
    assert keba.state.decode({"charging_state": 3, "cable_state": 7}) is CpState.C2
    assert keba.state.decode({"charging_state": 2, "cable_state": 1}) is CpState.A
    assert keba.state.decode({"charging_state": 4, "cable_state": 0}) is CpState.F


def test_generic_profile_reads_in_one_request() -> None:
    generic = load_profile("generic")
    plan = generic.plan_reads(generic.reading_registers)
    assert [(r.table, r.address, r.count) for r in plan] == [(RegisterTable.INPUT, 1, 33)]


def test_grouping_respects_the_per_read_bound(tmp_path: Path) -> None:
    text = shipped_text("generic").replace(
        "max_registers_per_read = 125", "max_registers_per_read = 10"
    )
    path = tmp_path / "small.toml"
    path.write_text(text)
    profile = load_profile(path)
    plan = profile.plan_reads(profile.reading_registers)
    assert all(request.count <= 10 for request in plan)
    assert sum(request.count for request in plan) == 33


def test_unknown_profile_name() -> None:
    with pytest.raises(FileNotFoundError, match="no charger profile named 'nope'"):
        load_profile("nope")


MALFORMED = [
    (
        '[registers.current_l1]\naddress = 1008\ntype = "u32"',
        '[registers.current_l1]\naddress = 1008\ntype = "u33"',
        "keba-p30",
        "registers.current_l1.type: 'u33' is not one of u16, i16, u32",
    ),
    (
        'address = 1020\ntype = "u32"\nscale = 0.001\nunit = "W"\nconfidence = "D"',
        'address = 1020\ntype = "u32"\nscale = 0.001\nunit = "W"',
        "keba-p30",
        "registers.power.confidence: is required",
    ),
    (
        'address = 1036\ntype = "u32"\nscale = 0.1\nunit = "Wh"\nconfidence = "D"',
        'address = 1036\ntype = "u32"\nscale = 0.1\nunit = "Wh"\nconfidence = "X"',
        "keba-p30",
        "registers.energy.confidence: 'X' is not one of D, V, U",
    ),
    (
        'address = 1036\ntype = "u32"\nscale = 0.1',
        'address = 1036\ntype = "u32"\nsacle = 0.1',
        "keba-p30",
        "registers.energy.sacle: unknown key",
    ),
    (
        "[registers.cable_state]\naddress = 1004",
        "[registers.cable_state]\naddress = 1001",
        "keba-p30",
        "registers.cable_state: address 1001 overlaps charging_state",
    ),
    (
        '{ when = { charging_state = 4 }, state = "F" }',
        '{ when = { charging_state = 4 }, state = "G" }',
        "keba-p30",
        "state.rules[0].state: 'G' is not one of A, B1",
    ),
    (
        "C2 = { charging_state = 3, cable_state = 7 }",
        "C2 = { charging_state = 2, cable_state = 7 }",
        "keba-p30",
        "state.encode.C2: {'charging_state': 2, 'cable_state': 7} decodes to B2, not C2",
    ),
    (
        'register = "set_current"',
        'register = "charging_state"',
        "keba-p30",
        "writes.current.register: 'charging_state' is not writable",
    ),
    (
        'address = 1008\ntype = "u32"\nscale = 0.001\nunit = "A"',
        'address = 1008\ntype = "u32"\nscale = 0.001\nunit = "mA"',
        "keba-p30",
        "registers.current_l1.unit: 'mA' must be 'A' after scaling",
    ),
    (
        '[registers.current_l2]\naddress = 6\ntable = "input"\ntype = "f32"',
        '[registers.current_l2]\naddress = 6\ntable = "input"\ntype = "f32"\nword_order = "middle"',
        "generic",
        "registers.current_l2.word_order: 'middle' is not one of big, little",
    ),
    (
        "[registers.energy]",
        "[registers.energy_total]",
        "generic",
        "registers.energy: is required",
    ),
    (
        'pause = "disable"',
        'pause = "stop"',
        "keba-p30",
        "writes.current.pause: 'stop' is not one of write_zero, disable",
    ),
    (
        '[writes.enable]\nregister = "enable_station"\non = 1\noff = 0',
        "",
        "keba-p30",
        "writes.current.pause: 'disable' needs a [writes.enable] table",
    ),
    (
        "count = 10",
        "count = 200",
        "generic",
        "registers.rfid.count: 200 is outside 1..125",
    ),
    (
        "resolution = 0.1\nmin = 6.0\nmax = 32.0\npause",
        "resolution = 0.05\nmin = 6.0\nmax = 32.0\npause",
        "generic",
        "writes.current.resolution: 0.05 is not a multiple of the register scale 0.1",
    ),
    ("[device]", "[device", "generic", "not valid TOML"),
]


@pytest.mark.parametrize(("old", "new", "base", "problem"), MALFORMED)
def test_malformed_profile_names_file_key_and_problem(
    tmp_path: Path, old: str, new: str, base: str, problem: str
) -> None:
    text = shipped_text(base)
    assert old in text, "the test's anchor text must exist in the shipped profile"
    path = tmp_path / f"broken-{base}.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert message.startswith(f"broken-{base}.toml: ")
    assert problem in message
