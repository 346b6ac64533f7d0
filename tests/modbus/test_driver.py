"""The driver against the simulator over real Modbus TCP on loopback: no mocks."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.core.charger import ChargerUnavailable, CpState, round_down_to_resolution
from gateway.modbus import (
    ModbusCharger,
    ModbusConnectionError,
    ModbusExceptionResponse,
    ModbusTcpLink,
    ModbusTimeout,
    RegisterDecodeError,
    SimulatedCharger,
    SimulatorServer,
    load_profile,
)
from gateway.modbus.profile import RegisterTable
from gateway.modbus.registers import RegisterValue

from .conftest import TEST_TIMEOUT_S, ManualClock


async def poll_for(charger: ModbusCharger, clock: ManualClock, seconds: float) -> None:
    """Let `seconds` pass while the gateway polls every 5 s, as the site does (a charger with
    a keep-alive, Alfen, keeps its setpoint only while polled)."""
    while seconds > 0:
        step = min(5.0, seconds)
        clock.advance(step)
        seconds -= step
        await charger.read()


def tolerance(sim: SimulatedCharger, name: str, floor: float) -> float:
    """What a register's resolution allows on top of `floor` (Heidelberg: 0.1 A, 1 Wh)."""
    return max(floor, sim.profile.registers[name].scale)


async def test_reading_matches_simulated_state(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    idle = await charger.read()
    assert idle.cp_state is CpState.A
    assert idle.current_a == (0.0, 0.0, 0.0)
    assert idle.voltage_v == (230.0, 230.0, 230.0)

    sim.plug_in(energy_needed_wh=50_000, max_current_a=16, phases=3)
    await charger.set_current_limit(16)
    await poll_for(charger, clock, 120)
    reading = await charger.read()
    assert reading.cp_state is sim.cp_state is CpState.C2
    assert reading.enabled is True
    for measured in reading.current_a:
        assert measured == pytest.approx(sim.current_a, abs=tolerance(sim, "current_l1", 0.01))
    assert reading.power_w == pytest.approx(sim.power_w, rel=1e-3, abs=1.0)
    assert reading.energy_wh == pytest.approx(sim.energy_wh, abs=tolerance(sim, "energy", 0.1))
    assert reading.setpoint_a == 16.0
    assert reading.error_code == 0


async def test_single_phase_ev_draws_on_l1_only(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    sim.plug_in(phases=1, max_current_a=10)
    await charger.set_current_limit(16)
    await poll_for(charger, clock, 100)
    reading = await charger.read()
    assert reading.current_a[0] == pytest.approx(10.0, abs=tolerance(sim, "current_l1", 0.01))
    assert reading.current_a[1:] == (0.0, 0.0)


async def test_setpoint_write_reaches_the_simulator_rounded_down(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    await charger.set_current_limit(16.0999)
    resolution = sim.profile.current.resolution_a
    expected = 16.0 if resolution == 0.1 else 16.099
    assert round_down_to_resolution(16.0999, resolution) == expected
    assert sim.setpoint_a == pytest.approx(expected)
    setpoint_writes = [w for w in sim.writes if w.register == sim.profile.current.register]
    assert len(setpoint_writes) == 1
    spec = sim.profile.registers[sim.profile.current.register]
    if spec.type.is_integer:
        # Raw register: 0.1 A steps for generic and Heidelberg (160), mA for KEBA and ABB.
        raw = 160 if resolution == 0.1 else 16099
        assert setpoint_writes[0].words[-1] == raw
    else:
        assert setpoint_writes[0].value == pytest.approx(expected)


async def test_setpoint_is_capped_at_the_profile_maximum(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    await charger.set_current_limit(1000)
    assert sim.setpoint_a == sim.profile.current.max_a


@pytest.mark.parametrize("amps", [0.5, 5.99, -1.0, float("nan")])
async def test_refuses_currents_the_pilot_cannot_signal(
    sim: SimulatedCharger, charger: ModbusCharger, amps: float
) -> None:
    with pytest.raises(ValueError, match="A"):
        await charger.set_current_limit(amps)
    assert sim.writes == []


async def test_zero_pauses_and_a_new_setpoint_resumes(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    sim.plug_in()
    await charger.set_current_limit(16)
    await poll_for(charger, clock, 30)
    assert sim.cp_state is CpState.C2
    await charger.set_current_limit(0)
    assert sim.offered_a == 0
    reading = await charger.read()
    assert reading.cp_state is CpState.B1
    assert reading.setpoint_a == 0.0
    if sim.profile.name == "keba-p30":
        # 5004 accepts 6000-63000 mA only: KEBA pauses by disabling the station.
        assert [w.register for w in sim.writes][-1] == "enable_station"
        assert sim.enabled is False
    await charger.set_current_limit(10)
    assert sim.offered_a == 10.0
    assert sim.enabled is True


async def test_enable_and_disable(sim: SimulatedCharger, charger: ModbusCharger) -> None:
    await charger.set_current_limit(16)
    await charger.set_enabled(False)
    assert sim.offered_a == 0.0
    if sim.profile.enable is not None:
        assert sim.enabled is False
    else:
        assert sim.setpoint_a == 0.0  # no enable register: disabled through the setpoint
    reading = await charger.read()
    assert reading.enabled is False
    assert reading.setpoint_a == 0.0
    await charger.set_current_limit(12)  # a new limit while disabled does not enable
    assert sim.offered_a == 0.0
    await charger.set_enabled(True)
    assert sim.enabled is True
    assert sim.offered_a == 12.0
    assert (await charger.read()).setpoint_a == 12.0


async def test_ev_session_cycle(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    tag = "04a1b2c3"
    sim.plug_in(rfid=tag, energy_needed_wh=2_000, max_current_a=16, phases=3)
    has_reader = "rfid" in sim.profile.registers
    plugged = await charger.read()
    assert plugged.cp_state is CpState.B1  # no setpoint yet: the EVSE offers nothing
    assert plugged.rfid == (tag if has_reader else None)
    assert (await charger.read()).rfid is None  # a tag is reported once

    await charger.set_current_limit(16)
    clock.advance(1)
    early = await charger.read()
    assert early.cp_state is CpState.C2
    assert 0 < early.current_a[0] < 5  # the EV ramps up with a ~10 s lag
    await poll_for(charger, clock, 60)
    charging = await charger.read()
    assert charging.current_a[0] == pytest.approx(16.0, abs=0.1)

    await charger.set_current_limit(10)
    await poll_for(charger, clock, 60)
    assert (await charger.read()).current_a[0] == pytest.approx(10.0, abs=0.1)
    await charger.set_current_limit(16)

    await poll_for(charger, clock, 3600)  # far longer than 2 kWh at 11 kW, taper included
    full = await charger.read()
    assert full.cp_state is CpState.B2
    assert full.current_a == (0.0, 0.0, 0.0)
    assert full.energy_wh == pytest.approx(2_000, abs=tolerance(sim, "energy", 0.2))

    sim.unplug()
    assert (await charger.read()).cp_state is CpState.A
    sim.plug_in(rfid=tag)
    # A new session reports the tag again.
    assert (await charger.read()).rfid == (tag if has_reader else None)


async def test_fault_reports_state_f_and_vendor_code(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    sim.plug_in()
    sim.inject_fault(error_code=42)
    reading = await charger.read()
    assert reading.cp_state is CpState.F
    # A profile without an error-code register (Alfen, Heidelberg) reports the state only.
    assert reading.error_code == (42 if "error_code" in sim.profile.registers else 0)
    sim.clear_fault()
    assert (await charger.read()).cp_state is CpState.B1


async def test_watchdog_falls_back_to_failsafe_current(
    sim: SimulatedCharger, charger: ModbusCharger, clock: ManualClock
) -> None:
    watchdog = sim.profile.watchdog
    if watchdog is None:
        # Alfen (validity time set in the app) and ABB (no failsafe documented): refused.
        with pytest.raises(NotImplementedError, match="no failsafe/watchdog"):
            await charger.configure_failsafe(8.0, 30)
        return
    timeout_s = max(watchdog.min_s, 10)
    await charger.configure_failsafe(8.0, timeout_s)
    await charger.set_current_limit(16)
    assert sim.failsafe_current_a == 8.0
    assert sim.watchdog_timeout_s == timeout_s

    clock.advance(timeout_s * 0.6)
    await charger.refresh_watchdog()  # a keep-alive well inside the timeout
    clock.advance(timeout_s * 0.6)
    assert sim.setpoint_a == 16.0
    clock.advance(timeout_s * 0.6)  # silence for longer than the timeout
    assert sim.setpoint_a == 8.0
    assert sim.watchdog_tripped
    if "offered_current" in sim.profile.registers:
        assert (await charger.read()).setpoint_a == 8.0


async def test_failsafe_arguments_are_checked(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    if sim.profile.watchdog is None:
        return  # covered by test_watchdog_falls_back_to_failsafe_current
    with pytest.raises(ValueError, match="failsafe current"):
        await charger.configure_failsafe(3.0, 30)
    with pytest.raises(ValueError, match="watchdog timeout"):
        await charger.configure_failsafe(8.0, 100_000)


async def test_modbus_exception_response_is_unavailable(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    sim.forced_exception = 4
    with pytest.raises(ChargerUnavailable, match=r"Modbus exception 4 \(server device failure\)"):
        await charger.read()
    with pytest.raises(ChargerUnavailable) as caught:
        await charger.set_current_limit(16)
    assert isinstance(caught.value.__cause__, ModbusExceptionResponse)
    assert f"unit {sim.unit_id}" in str(caught.value)
    sim.forced_exception = None
    assert (await charger.read()).cp_state is CpState.A  # the link survived


async def test_unknown_state_code_is_a_clear_error(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    state_register = sim.profile.state.registers[0]
    spec = sim.profile.registers[state_register]
    garbage = {
        "keba-p30": [0, 99],
        "keba-p40": [0, 99],
        "alfen-ng9xx": [0x5A39, 0, 0, 0, 0],  # "Z9"
        "abb-terra-ac": [0, 0x6300],  # state byte 0x63
    }.get(sim.profile.name, [99])
    assert len(garbage) == spec.count
    sim.force_register(state_register, garbage)
    with pytest.raises(RegisterDecodeError, match="unknown state code"):
        await charger.read()
    sim.force_register(state_register, None)
    assert (await charger.read()).cp_state is CpState.A


async def test_garbage_rfid_string_is_a_clear_error(clock: ManualClock) -> None:
    sim = SimulatedCharger("generic", clock=clock)
    port = await sim.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    charger = ModbusCharger(link, None, sim.profile)
    try:
        sim.force_register("rfid", [0xC3A9] + [0] * 9)
        with pytest.raises(RegisterDecodeError, match=r"rfid \(input 24\).*non-ASCII"):
            await charger.read()
    finally:
        await link.close()
        await sim.stop()


async def test_stopped_simulator_is_unavailable_quickly(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    await charger.read()
    await sim.stop()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        with pytest.raises(ChargerUnavailable):
            await charger.read()
    assert loop.time() - started < 4 * TEST_TIMEOUT_S


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_closed_port_is_unavailable_and_backs_off() -> None:
    link = ModbusTcpLink("127.0.0.1", free_port(), request_timeout_s=TEST_TIMEOUT_S)
    charger = ModbusCharger(link, None, load_profile("generic"))
    with pytest.raises(ChargerUnavailable, match="cannot connect") as first:
        await charger.read()
    assert isinstance(first.value.__cause__, ModbusConnectionError)
    # During the back-off the link fails at once instead of reconnecting every time.
    with pytest.raises(ChargerUnavailable, match="next attempt in"):
        await charger.set_current_limit(16)
    await link.close()


async def test_silent_charger_times_out(sim: SimulatedCharger, charger: ModbusCharger) -> None:
    sim.response_delay_s = TEST_TIMEOUT_S * 3
    with pytest.raises(ChargerUnavailable, match="no response within") as caught:
        await charger.read()
    assert isinstance(caught.value.__cause__, ModbusTimeout)
    sim.response_delay_s = 0
    await asyncio.sleep(TEST_TIMEOUT_S * 3)  # let the late answer arrive and be dropped


async def test_unit_ids_share_one_link(clock: ManualClock) -> None:
    first = SimulatedCharger("generic", unit_id=1, clock=clock)
    second = SimulatedCharger("generic", unit_id=2, clock=clock)
    server = SimulatorServer([first, second])
    port = await server.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    try:
        one = ModbusCharger(link, 1, first.profile)
        two = ModbusCharger(link, 2, second.profile)
        second.plug_in()
        await two.set_current_limit(20)
        clock.advance(60)
        readings = await asyncio.gather(one.read(), two.read(), one.read(), two.read())
        assert [r.cp_state for r in readings] == [CpState.A, CpState.C2] * 2
        assert first.writes == []
        assert second.setpoint_a == 20.0
        missing = ModbusCharger(link, 3, first.profile)
        with pytest.raises(ChargerUnavailable, match="Modbus exception 11"):
            await missing.read()
    finally:
        await link.close()
        await server.stop()


async def test_keba_simulator_refuses_multi_value_reads(clock: ManualClock) -> None:
    sim = SimulatedCharger("keba-p30", clock=clock)
    port = await sim.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    try:
        assert await link.read_registers(255, RegisterTable.HOLDING, 1000, 2) == [0, 2]
        with pytest.raises(ModbusExceptionResponse, match="exception 2"):
            await link.read_registers(255, RegisterTable.HOLDING, 1000, 4)
        # 5004 is write-only and accepts 6000-63000 mA only (chargers.md §3).
        with pytest.raises(ModbusExceptionResponse, match="exception 3"):
            await link.write_registers(255, 5004, [5000])
    finally:
        await link.close()
        await sim.stop()


async def test_read_values_reads_informational_registers(
    sim: SimulatedCharger, charger: ModbusCharger
) -> None:
    per_profile: dict[str, dict[str, RegisterValue]] = {
        "keba-p30": {"product_code": 311000, "max_supported_current": 32.0},
        "keba-p40": {"product_code": 4110000, "max_supported_current": 32.0},
        "generic": {"layout_version": 1},
        "alfen-ng9xx": {"safe_current": 6.0, "setpoint_accounted": 1},
        "abb-terra-ac": {"firmware": 1},
        "heidelberg-energy-control": {"layout_version": 0},
    }
    informational = per_profile[sim.profile.name]
    assert await charger.read_values(informational) == informational
    with pytest.raises(KeyError):
        await charger.read_values(["no_such_register"])
