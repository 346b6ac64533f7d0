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


def test_unverified_registers_are_the_references_u_flags() -> None:
    unverified = {
        name: {spec.address for spec in profile.registers.values() if spec.confidence.value == "U"}
        for name, profile in ((n, load_profile(n)) for n in profile_names())
    }
    assert unverified == {
        "generic": set(),
        "keba-p30": {5016, 5020},
        "keba-p40": {5016, 5020},
        "alfen-ng9xx": set(),
        "heidelberg-energy-control": {257},
        "abb-terra-ac": {0x4106},
    }


def test_alfen_state_is_a_string_and_abb_state_a_bit_field() -> None:
    alfen = load_profile("alfen-ng9xx")
    spec = alfen.registers["mode3_state"]
    assert (spec.address, spec.type, spec.count) == (1201, RegisterType.STRING, 5)
    assert alfen.state.decode({"mode3_state": "C2"}) is CpState.C2
    assert alfen.state.decode({"mode3_state": "E"}) is CpState.E
    assert alfen.registers["setpoint"].type is RegisterType.F32
    assert alfen.registers["energy"].type is RegisterType.F64
    assert alfen.keep_alive is not None
    assert alfen.keep_alive.interval_s == 25
    assert alfen.phases is not None
    assert (alfen.phases.one_phase, alfen.phases.three_phases) == (1, 3)

    abb = load_profile("abb-terra-ac")
    mapping = abb.state
    # 0x400C = b0 b1 b2 b3 (big-endian U32); the state is b2 & 0x7F.
    raw = int.from_bytes(bytes([0xAA, 0xBB, 0x84, 0xCC]), "big")  # b2 = 0x84 -> 4 (C2)
    values = {
        "charging_state": mapping.value("charging_state", raw),
        "lock_state": mapping.value("lock_state", 0x111),
        "error_code": 0,
    }
    assert values["charging_state"] == 4
    assert mapping.decode(values) is CpState.C2
    assert mapping.decode({**values, "error_code": 17}) is CpState.F
    stopped = {"charging_state": 5, "lock_state": 0, "error_code": 0}
    assert mapping.decode(stopped) is CpState.A
    assert mapping.decode({**stopped, "lock_state": 1}) is CpState.B1
    assert mapping.register_value("charging_state", 4) == 0x0400
    assert abb.registers["set_current_limit"].type is RegisterType.U32
    assert abb.enable is None  # never 0x4105 (field note)


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
    # String state registers (Alfen): rules compare strings.
    (
        '{ when = { mode3_state = "A" }, state = "A" }',
        '{ when = { mode3_state = 0 }, state = "A" }',
        "alfen-ng9xx",
        "state.rules[0].when.mode3_state: 0: mode3_state is a string register, compare with",
    ),
    (
        'A = { mode3_state = "A" }',
        'A = { mode3_state = "Z" }',
        "alfen-ng9xx",
        "state.encode.A: {'mode3_state': 'Z'} matches no rule",
    ),
    # Bit fields of a state register (ABB 0x400C).
    (
        "shift = 8\nmask = 0x7F",
        "shift = 28\nmask = 0x7F",
        "abb-terra-ac",
        "state.bits.charging_state.mask: 0x7f << 28 runs past the register's 32 bits",
    ),
    (
        "[state.known]",
        "[state.bits.mode3_state]\nshift = 0\nmask = 1\n\n[state.known]",
        "alfen-ng9xx",
        "state.bits.mode3_state: is a string register: only integer registers have bits",
    ),
    (
        "A = { charging_state = 0,",
        "A = { charging_state = 200,",
        "abb-terra-ac",
        "state.encode.A.charging_state: 200 does not fit the bit field (mask 0x7f)",
    ),
    (
        "error_code = { not = [0] }",
        "error_code = { except = [0] }",
        "abb-terra-ac",
        "state.rules[0].when.error_code: {'except': [0]}: a table here takes only 'not'",
    ),
    # Per-register unit id (Alfen's station on unit 200).
    (
        "[registers.phases]\naddress = 1215",
        "[registers.phases]\naddress = 1215\nunit_id = 300",
        "alfen-ng9xx",
        "registers.phases.unit_id: 300 is outside 0..255",
    ),
    # A per-session energy counter (ABB).
    (
        'address = 0x401C\ntype = "u32"',
        'address = 0x401C\ntype = "u32"\ncounter = "session"',
        "abb-terra-ac",
        "registers.power.counter: only the energy register takes a counter kind",
    ),
    (
        'confidence = "D"\ncounter = "session"',
        'confidence = "D"\ncounter = "daily"',
        "abb-terra-ac",
        "registers.energy.counter: 'daily' is not one of lifetime, session",
    ),
    # 1p/3p phase switching.
    (
        "one_phase = 1\nthree_phases = 3",
        "one_phase = 3\nthree_phases = 3",
        "alfen-ng9xx",
        "writes.phases.three_phases: 3 is also the value for one phase",
    ),
    (
        'register = "phases"',
        'register = "safe_current"',
        "alfen-ng9xx",
        "writes.phases.register: 'safe_current' is not writable",
    ),
    (
        'readback = "phases"',
        'readback = "phase_state"',
        "alfen-ng9xx",
        "writes.phases.readback: 'phase_state' is not a register in [registers]",
    ),
    (
        "one_phase = 0\nthree_phases = 1",
        'one_phase = 0\nthree_phases = 1\nreadback = "set_current"',
        "keba-p40",
        "writes.phases.readback: 'set_current' must be a readable integer register",
    ),
    # Start-up writes (Heidelberg).
    (
        "standby = 4\nremote_lock = 1",
        "standby = 4\npower = 1",
        "heidelberg-energy-control",
        "writes.startup.power: is not writable (access = 'r')",
    ),
    (
        "standby = 4\nremote_lock = 1",
        "standby = 70000\nremote_lock = 1",
        "heidelberg-energy-control",
        "writes.startup.standby: 70000.0: 70000 does not fit u16",
    ),
    (
        "standby = 4\nremote_lock = 1",
        "standby = 4\nmax_current = 10",
        "heidelberg-energy-control",
        "writes.startup.max_current: is written by another [writes] table",
    ),
    (
        "standby = 4\nremote_lock = 1",
        "standby = 4\nremote_lock = 1\nlamp = 1",
        "heidelberg-energy-control",
        "writes.startup.lamp: is not a register in [registers]",
    ),
    # Keep-alive without a watchdog register (Alfen).
    (
        "interval_s = 25",
        "interval_s = 40",
        "alfen-ng9xx",
        "writes.keep_alive.interval_s: 40.0 s is more than half the charger's timeout of 60.0 s",
    ),
    (
        'refresh = "setpoint"\ninterval_s',
        'refresh = "timeout"\ninterval_s',
        "alfen-ng9xx",
        "writes.keep_alive.refresh: 'timeout' is not one of setpoint",
    ),
    (
        'fallback_current = "safe_current"',
        'fallback_current = "phases"',
        "alfen-ng9xx",
        "writes.keep_alive.fallback_current: 'phases' must be a readable register in 'A'",
    ),
    (
        '[writes.watchdog_timeout]\nregister = "watchdog_timeout"',
        "[writes.keep_alive]\ninterval_s = 5\ncharger_timeout_s = 60\n\n"
        '[writes.watchdog_timeout]\nregister = "watchdog_timeout"',
        "generic",
        "writes.keep_alive: conflicts with [writes.watchdog_timeout]",
    ),
    # Vendor fault codes -> OCPP 1.6 ChargePointErrorCode.
    (
        '3 = "HighTemperature"',
        '3 = "Overheat"',
        "generic",
        "errors.3: 'Overheat' is not one of ConnectorLockFailure, EVCommunicationError",
    ),
    (
        '11 = "InternalError"',
        'x1 = "InternalError"',
        "generic",
        "errors.x1: is not a vendor fault code (a decimal integer)",
    ),
    (
        '11 = "InternalError"',
        '0 = "InternalError"',
        "generic",
        "errors.0: 0 means no fault and is always NoError",
    ),
    (
        '11 = "InternalError"',
        '11 = "NoError"',
        "generic",
        "errors.11: a non-zero fault code cannot be NoError",
    ),
    (
        "[writes.phases]",
        '[errors]\n1 = "OtherError"\n\n[writes.phases]',
        "alfen-ng9xx",
        "errors: vendor codes need an error_code register to come from",
    ),
    # Request gap (Heidelberg).
    (
        "min_gap_s = 0.1",
        "min_gap_s = -1",
        "heidelberg-energy-control",
        "requests.min_gap_s: -1.0 is outside 0..10 s",
    ),
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
