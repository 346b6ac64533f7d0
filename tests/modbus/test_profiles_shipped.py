"""Every shipped profile against its simulator, through `ModbusCharger` over real Modbus TCP.

The `sim`, `link` and `charger` fixtures (conftest) run each test once per shipped profile;
tests of a feature only some models have are parametrized over those profiles only.
"""

from __future__ import annotations

import pytest

from gateway.core.charger import (
    ChargerUnavailable,
    CpState,
    OcppErrorCode,
    round_down_to_resolution,
)
from gateway.modbus import (
    ModbusCharger,
    ModbusTcpLink,
    SimulatedCharger,
    SimulatorServer,
    load_profile,
    parse_profile,
    profile_names,
)

from .conftest import TEST_TIMEOUT_S, ManualClock

PROFILES = {name: load_profile(name) for name in profile_names()}
PHASE_SWITCHING = [name for name, profile in PROFILES.items() if profile.phases is not None]
NO_PHASE_SWITCHING = [name for name, profile in PROFILES.items() if profile.phases is None]
WITH_STARTUP = [name for name, profile in PROFILES.items() if profile.startup]
WITH_WATCHDOG = [
    name
    for name, profile in PROFILES.items()
    if profile.watchdog is not None and profile.failsafe_current is not None
]
WITH_KEEP_ALIVE = [name for name, profile in PROFILES.items() if profile.keep_alive is not None]
WITH_ERROR_REGISTER = [
    name for name, profile in PROFILES.items() if "error_code" in profile.registers
]
WITHOUT_ERROR_REGISTER = [
    name for name, profile in PROFILES.items() if "error_code" not in profile.registers
]


async def poll_for(charger: ModbusCharger, clock: ManualClock, seconds: float) -> None:
    """Let `seconds` pass while the gateway polls every 5 s, as the site does."""
    while seconds > 0:
        step = min(5.0, seconds)
        clock.advance(step)
        seconds -= step
        await charger.read()


def test_the_reference_models_are_shipped() -> None:
    assert {
        "generic",
        "keba-p30",
        "keba-p40",
        "alfen-ng9xx",
        "heidelberg-energy-control",
        "abb-terra-ac",
    } <= set(PROFILES)
    # Each feature is exercised by at least one shipped profile.
    for subset in (PHASE_SWITCHING, NO_PHASE_SWITCHING, WITH_STARTUP, WITH_KEEP_ALIVE):
        assert subset
    for subset in (WITH_WATCHDOG, WITH_ERROR_REGISTER, WITHOUT_ERROR_REGISTER):
        assert subset


async def test_full_ev_session(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    assert (await charger.read()).cp_state is CpState.A
    sim.plug_in(energy_needed_wh=3_000, max_current_a=32, phases=3)
    plugged = await charger.read()
    assert plugged.cp_state is CpState.B1
    assert plugged.ocpp_error_code is OcppErrorCode.NO_ERROR

    await charger.set_enabled(True)
    await charger.set_current_limit(13)
    clock.advance(1)
    ramping = await charger.read()
    assert ramping.cp_state is CpState.C2
    assert 0 < ramping.current_a[0] < 13 * 0.5  # the EV follows with a lag
    await poll_for(charger, clock, 60)
    charging = await charger.read()
    assert charging.current_a[0] == pytest.approx(13.0, abs=0.15)
    assert charging.setpoint_a == 13.0
    assert charging.power_w == pytest.approx(3 * 13 * 230, rel=0.02)

    await charger.set_current_limit(0)  # pause
    clock.advance(1)
    paused = await charger.read()
    assert paused.cp_state is CpState.B1
    assert paused.current_a == (0.0, 0.0, 0.0)
    assert paused.setpoint_a == 0.0
    energy_paused = paused.energy_wh
    await poll_for(charger, clock, 60)
    assert (await charger.read()).energy_wh == pytest.approx(energy_paused, abs=1.0)

    await charger.set_current_limit(16)  # resume
    await poll_for(charger, clock, 60)
    resumed = await charger.read()
    assert resumed.cp_state is CpState.C2
    assert resumed.current_a[0] == pytest.approx(16.0, abs=0.15)

    await poll_for(charger, clock, 3600)  # the EV fills up
    full = await charger.read()
    assert full.cp_state is CpState.B2
    assert full.current_a == (0.0, 0.0, 0.0)
    assert full.energy_wh == pytest.approx(3_000, abs=1.0)

    sim.unplug()
    gone = await charger.read()
    assert gone.cp_state is CpState.A
    assert gone.energy_wh == pytest.approx(3_000, abs=1.0)  # lifetime counter keeps it


async def test_setpoint_rounds_down_to_the_resolution(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    resolution = sim.profile.current.resolution_a
    asked = 10 + resolution * 0.99  # just below the next step
    await charger.set_current_limit(asked)
    assert sim.setpoint_a == pytest.approx(10.0, abs=1e-6)
    await charger.set_current_limit(10 + resolution * 7)
    expected = round_down_to_resolution(10 + resolution * 7, resolution)
    assert sim.setpoint_a == pytest.approx(expected, abs=1e-6)
    assert expected > 10


async def test_the_pilot_floor_of_6_a(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    sim.plug_in()
    for amps in (5.9, 1.0, 0.1):
        with pytest.raises(ValueError, match="minimum; command 0 to pause"):
            await charger.set_current_limit(amps)
    assert not [w for w in sim.writes if w.register == sim.profile.current.register]
    await charger.set_current_limit(6.0)
    await poll_for(charger, clock, 60)
    reading = await charger.read()
    assert reading.cp_state is CpState.C2
    assert reading.current_a[0] == pytest.approx(6.0, abs=0.15)


async def test_multi_register_setpoint_goes_out_in_one_request(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    spec = sim.profile.registers[sim.profile.current.register]
    await charger.set_current_limit(16)
    writes = [w for w in sim.writes if w.register == spec.name]
    assert len(writes) == 1
    assert len(writes[0].words) == spec.count  # Alfen FLOAT32, ABB U32: 2 registers at once


@pytest.mark.parametrize("profile_name", WITH_WATCHDOG)
async def test_watchdog_expiry_falls_back_to_the_failsafe_current(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    watchdog = sim.profile.watchdog
    assert watchdog is not None
    timeout_s = max(watchdog.min_s, 20)
    sim.plug_in(max_current_a=32)
    await charger.configure_failsafe(6.0, timeout_s)
    await charger.set_current_limit(16)
    assert charger.keep_alive_interval_s == timeout_s / 2
    for _ in range(4):  # keep-alives well inside the timeout hold the setpoint
        clock.advance(timeout_s * 0.4)
        await charger.refresh_watchdog()
    assert sim.setpoint_a == 16.0
    assert not sim.watchdog_tripped
    clock.advance(timeout_s * 1.1)  # the gateway falls silent
    assert sim.setpoint_a == 6.0
    assert sim.watchdog_tripped
    clock.advance(60)
    assert sim.current_a == pytest.approx(6.0, abs=0.1)


@pytest.mark.parametrize("profile_name", WITH_KEEP_ALIVE)
async def test_keep_alive_holds_the_setpoint_and_silence_gives_the_safe_current(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    keep_alive = sim.profile.keep_alive
    assert keep_alive is not None
    assert keep_alive.fallback_current is not None
    safe_a = sim.profile.registers[keep_alive.fallback_current].sim_value
    assert isinstance(safe_a, float)
    assert safe_a > 0
    with pytest.raises(NotImplementedError):
        await charger.configure_failsafe(8.0, 60)  # set in the app, not by the gateway
    sim.plug_in(max_current_a=32)
    await charger.set_current_limit(16)
    setpoint = sim.profile.current.register
    before = len([w for w in sim.writes if w.register == setpoint])
    await poll_for(charger, clock, keep_alive.charger_timeout_s * 3)
    rewrites = len([w for w in sim.writes if w.register == setpoint]) - before
    assert rewrites >= (keep_alive.charger_timeout_s * 3) // keep_alive.interval_s
    assert not sim.watchdog_tripped
    assert (await charger.read()).setpoint_a == 16.0

    clock.advance(keep_alive.charger_timeout_s + 1)  # nobody polls: the validity runs out
    assert sim.setpoint_a == safe_a
    assert sim.watchdog_tripped
    values = await charger.read_values([keep_alive.fallback_current, "offered_current"])
    assert values == {keep_alive.fallback_current: safe_a, "offered_current": safe_a}
    # The gateway polls again: the overdue keep-alive restores its setpoint first.
    assert (await charger.read()).setpoint_a == 16.0
    assert sim.setpoint_a == 16.0


@pytest.mark.parametrize("profile_name", PHASE_SWITCHING)
async def test_phase_switching(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    phases = sim.profile.phases
    assert phases is not None
    sim.plug_in(max_current_a=16, phases=3)
    await charger.set_current_limit(16)
    await poll_for(charger, clock, 60)
    assert all(current > 15 for current in (await charger.read()).current_a)

    await charger.set_phases(1)
    assert sim.phases == 1
    assert sim.writes[-1].register == phases.register
    assert sim.writes[-1].value == phases.one_phase
    await poll_for(charger, clock, 60)
    one_phase = await charger.read()
    assert one_phase.current_a[0] == pytest.approx(16.0, abs=0.15)
    assert one_phase.current_a[1:] == (0.0, 0.0)
    if phases.readback is not None:
        assert await charger.read_phases() == 1

    await charger.set_phases(3)
    assert sim.phases == 3
    assert sim.writes[-1].value == phases.three_phases
    if phases.readback is not None:
        assert await charger.read_phases() == 3
    with pytest.raises(ValueError, match="1 or 3"):
        await charger.set_phases(2)


@pytest.mark.parametrize("profile_name", NO_PHASE_SWITCHING)
async def test_no_phase_switching_is_a_clear_error(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    with pytest.raises(NotImplementedError, match=r"no 1p/3p phase switching \(\[writes.phases"):
        await charger.set_phases(1)
    assert await charger.read_phases() is None
    assert sim.phases == 3


@pytest.mark.parametrize("profile_name", WITH_ERROR_REGISTER)
async def test_fault_maps_to_the_ocpp_error_code_and_keeps_the_vendor_code(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    sim.plug_in()
    errors = sim.profile.errors
    cases = [(code, ocpp) for code, ocpp in errors.items()]
    unknown = max(errors, default=0) + 100
    cases.append((unknown, OcppErrorCode.OTHER_ERROR))  # not in [errors]: OtherError
    for code, ocpp in cases:
        sim.inject_fault(code)
        reading = await charger.read()
        assert reading.cp_state is CpState.F
        assert (reading.error_code, reading.ocpp_error_code) == (code, ocpp)
        sim.clear_fault()
        cleared = await charger.read()
        assert (cleared.error_code, cleared.ocpp_error_code) == (0, OcppErrorCode.NO_ERROR)


def test_generic_fault_codes_follow_its_documented_table() -> None:
    errors = PROFILES["generic"].errors
    assert errors[1] is OcppErrorCode.GROUND_FAILURE
    assert errors[3] is OcppErrorCode.HIGH_TEMPERATURE
    assert errors[7] is OcppErrorCode.EV_COMMUNICATION_ERROR


@pytest.mark.parametrize("profile_name", WITHOUT_ERROR_REGISTER)
async def test_fault_without_an_error_register_is_other_error(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    sim.plug_in()
    sim.inject_fault(7)
    reading = await charger.read()
    assert reading.cp_state is CpState.F
    assert (reading.error_code, reading.ocpp_error_code) == (0, OcppErrorCode.OTHER_ERROR)


@pytest.mark.parametrize("profile_name", WITH_STARTUP)
async def test_startup_writes_before_the_first_request_and_after_a_reboot(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    startup = sim.profile.startup
    names = [write.register for write in startup]
    expected = {write.register: write.value for write in startup}
    await charger.read()
    assert [w.register for w in sim.writes] == names  # in file order, before anything else
    assert await charger.read_values(names) == expected  # stored and readable back
    await charger.read()
    assert len(sim.writes) == len(names)  # once per connection, not per poll
    await charger.initialize()  # idempotent
    assert await charger.read_values(names) == expected
    assert [w.register for w in sim.writes] == names * 2

    await charger.configure_failsafe(6.0, 30)
    await charger.set_current_limit(16)
    sim.reboot()  # e.g. a power cut: start-up values and failsafe are gone
    assert sim.failsafe_current_a == 0.0
    assert await charger.read_values(names) != expected
    sim.forced_exception = 4  # the gateway notices through a failed request...
    with pytest.raises(ChargerUnavailable):
        await charger.read()
    sim.forced_exception = None
    await charger.read()  # ...and writes everything again before the next one
    assert await charger.read_values(names) == expected
    assert sim.failsafe_current_a == 6.0
    assert sim.watchdog_timeout_s == 30


async def test_heidelberg_power_up_and_watchdog_unit() -> None:
    profile = PROFILES["heidelberg-energy-control"]
    sim = SimulatedCharger(profile)
    assert (sim.setpoint_a, sim.failsafe_current_a) == (0.0, 0.0)  # 261 and 262 start at 0
    assert profile.requests.min_gap_s == 0.1
    assert profile.default_unit_id == 1
    assert profile.registers["watchdog_timeout"].confidence.value == "U"
    assert profile.registers["watchdog_timeout"].scale == 0.001  # evcc: milliseconds
    assert profile.registers["charging_state"].table.value == "input"


async def test_abb_session_energy_adds_up_across_sessions(clock: ManualClock) -> None:
    sim = SimulatedCharger("abb-terra-ac", clock=clock)
    port = await sim.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    charger = ModbusCharger(link, None, sim.profile, clock=clock)
    try:
        for session in (1, 2):
            sim.plug_in(energy_needed_wh=1_000)
            await charger.set_current_limit(16)
            await poll_for(charger, clock, 1800)
            assert (await charger.read()).energy_wh == pytest.approx(1_000 * session, abs=2)
            sim.unplug()
            await charger.set_current_limit(0)
        raw = await charger.read_values(["energy"])
        assert raw["energy"] == pytest.approx(1_000, abs=1)  # the register itself restarted
    finally:
        await link.close()
        await sim.stop()


STATION_PROFILE = """
[device]
name = "split"
default_unit_id = 1

[registers.state]
address = 0
type = "u16"
confidence = "V"

[registers.current_l1]
address = 1
type = "u16"
unit = "A"
confidence = "V"

[registers.current_l2]
address = 2
type = "u16"
unit = "A"
confidence = "V"

[registers.current_l3]
address = 3
type = "u16"
unit = "A"
confidence = "V"

[registers.power]
address = 4
type = "u16"
unit = "W"
confidence = "V"

[registers.energy]
address = 5
type = "u16"
unit = "Wh"
confidence = "V"

[registers.station_limit]
address = 100
type = "u16"
unit = "A"
unit_id = 200
access = "rw"
confidence = "V"

[registers.setpoint]
address = 10
type = "u16"
unit = "A"
access = "rw"
confidence = "V"

[state]
registers = ["state"]
rules = [
    { when = { state = 0 }, state = "A" },
    { when = { state = 1 }, state = "B1" },
    { when = { state = 2 }, state = "C2" },
    { when = { state = 3 }, state = "F" },
]
encode = { A = { state = 0 }, B1 = { state = 1 }, C2 = { state = 2 }, F = { state = 3 } }

[writes.current]
register = "setpoint"
max = 32
"""


async def test_a_register_on_another_unit_id_is_asked_there(clock: ManualClock) -> None:
    profile = parse_profile(STATION_PROFILE, "split.toml")
    socket = SimulatedCharger(profile, unit_id=1, clock=clock)
    station = SimulatedCharger(profile, unit_id=200, clock=clock)
    server = SimulatorServer([socket, station])
    port = await server.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    charger = ModbusCharger(link, 1, profile)
    try:
        station.force_register("station_limit", [25])
        assert await charger.read_values(["station_limit"]) == {"station_limit": 25}
        # The socket's simulator does not serve the station register on its own unit.
        with pytest.raises(ChargerUnavailable, match="exception 2"):
            await link.read_registers(1, profile.registers["state"].table, 100, 1)
        await charger.set_current_limit(16)  # socket registers stay on the socket's unit
        assert socket.setpoint_a == 16.0
        assert station.writes == []
    finally:
        await link.close()
        await server.stop()
