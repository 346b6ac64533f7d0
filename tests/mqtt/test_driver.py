"""`MqttCharger` against the MQTT simulators over a real Mosquitto, for every payload style."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.core.charger import ChargerReading, ChargerUnavailable, CpState, OcppErrorCode
from gateway.mqtt import (
    MqttCharger,
    MqttChargerStyle,
    MqttClient,
    MqttConfig,
    evgw_style,
    goe_style,
    openwb_style,
)
from gateway.mqtt.broker import LocalBroker
from gateway.mqtt.simulator import (
    EvgwSimulator,
    GoeSimulator,
    MqttChargerSimulator,
    OpenWbSimulator,
)
from gateway.simulation import SimulatedChargePoint

from .conftest import ManualClock, eventually

STALE_S = 1.5
"""Short stale-data timeout; the simulators publish every PUBLISH_S."""
PUBLISH_S = 0.1
STYLES = ["go-e", "openWB", "evgw"]
OPENWB_AVAILABILITY = "openWB/mqtt/chargepoint/3/get/online"


@dataclass
class Rig:
    style_name: str
    style: MqttChargerStyle
    sim: MqttChargerSimulator
    driver: MqttCharger
    client: MqttClient
    clock: ManualClock
    broker: LocalBroker

    @property
    def cp(self) -> SimulatedChargePoint:
        return self.sim.charge_point

    async def reading(self) -> ChargerReading:
        return await self.driver.read()

    async def until(self, what: str, **expected: object) -> ChargerReading:
        """Poll `read()` until every named field has the expected value."""

        async def probe() -> ChargerReading:
            reading = await self.driver.read()
            for name, value in expected.items():
                actual = getattr(reading, name)
                approximate = isinstance(value, float) or (
                    isinstance(value, tuple) and bool(value) and isinstance(value[0], float)
                )
                if approximate:
                    assert actual == pytest.approx(value, abs=0.05), (name, actual)
                else:
                    assert actual == value, (name, actual)
            return reading

        return await eventually(probe, what=what)

    async def offering(self, amps: float, then_advance_s: float = 0.0) -> None:
        """Wait until the simulated charger has applied the commands (it offers `amps`), then
        move its physics clock: a style without result topic completes a write at the
        broker's PUBACK, before the charger has seen it."""
        await eventually(lambda: _expect(self.cp.offered_a == amps), what=f"offering {amps} A")
        self.clock.advance(then_advance_s)

    async def unavailable(self, match: str) -> str:
        async def probe() -> str:
            return await _unavailable(self.driver.read(), match)

        return await eventually(probe, what=f"ChargerUnavailable({match})")


def make_style(name: str) -> MqttChargerStyle:
    if name == "go-e":
        return goe_style("000123")
    if name == "openWB":
        return openwb_style(3, availability_topic=OPENWB_AVAILABILITY)
    # No watchdog here: the tests jump the simulated clock by minutes, which would trip it
    # (test_keepalive_republishes_the_commanded_state covers the watchdog).
    return evgw_style("cp-7", watchdog_s=None, max_current_a=32)


def make_sim(name: str, port: int, cp: SimulatedChargePoint) -> MqttChargerSimulator:
    config = MqttConfig(port=port, reconnect_max_delay_s=1)
    if name == "go-e":
        return GoeSimulator(config, "000123", charge_point=cp, interval_s=PUBLISH_S)
    if name == "openWB":
        return OpenWbSimulator(
            config, 3, availability_topic=OPENWB_AVAILABILITY, charge_point=cp, interval_s=PUBLISH_S
        )
    return EvgwSimulator(config, "cp-7", charge_point=cp, interval_s=PUBLISH_S)


@pytest.fixture(params=STYLES)
def style_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _rig(broker: LocalBroker, clock: ManualClock, name: str, style: MqttChargerStyle) -> Rig:
    cp = SimulatedChargePoint(name=name, clock=clock)
    sim = make_sim(name, broker.port, cp)
    await sim.start()
    client = MqttClient(
        MqttConfig(port=broker.port, client_id="gateway", reconnect_max_delay_s=1),
    )
    await client.connect()
    driver = MqttCharger(client, style, stale_after_s=STALE_S, result_timeout_s=3.0)
    await driver.start()
    return Rig(name, style, sim, driver, client, clock, broker)


@pytest.fixture
async def rig(broker: LocalBroker, clock: ManualClock, style_name: str) -> AsyncIterator[Rig]:
    setup = await _rig(broker, clock, style_name, make_style(style_name))
    yield setup
    await setup.driver.close()
    await setup.sim.stop()
    await setup.client.close()


async def start_charging(rig: Rig, amps: float) -> ChargerReading:
    await rig.driver.set_enabled(True)
    await rig.driver.set_current_limit(amps)
    rig.cp.plug_in(rfid="04A1B2C3", energy_needed_wh=50_000, max_current_a=32, phases=3)
    await rig.offering(amps, then_advance_s=150)  # 15 time constants of the EV's lag
    return await rig.until("charging", cp_state=CpState.C2, current_a=(amps, amps, amps))


# ---------------------------------------------------------------------- sessions


async def test_full_session(rig: Rig) -> None:
    idle = await rig.until("idle", cp_state=CpState.A)
    assert idle.current_a == (0.0, 0.0, 0.0)

    # Plug in; charging follows the setpoint.
    charging = await start_charging(rig, 10)
    assert charging.setpoint_a == 10.0
    assert charging.enabled is True
    assert charging.power_w == pytest.approx(3 * 10 * 230, rel=0.01)
    assert charging.voltage_v == (230.0, 230.0, 230.0)
    assert charging.energy_wh > 0
    assert charging.error_code == 0

    await rig.driver.set_current_limit(13)
    await rig.offering(13, then_advance_s=150)
    await rig.until("13 A", current_a=(13.0, 13.0, 13.0), setpoint_a=13.0)

    # Pause: 0 A.
    await rig.driver.set_current_limit(0)
    await rig.offering(0, then_advance_s=1)
    paused = await rig.until(
        "paused", cp_state=CpState.B1, current_a=(0.0, 0.0, 0.0), setpoint_a=0.0
    )
    assert paused.power_w == 0.0
    rig.clock.advance(60)
    still = await rig.until("paused a minute later", cp_state=CpState.B1)
    assert still.energy_wh == pytest.approx(paused.energy_wh, abs=0.01)

    # Resume.
    await rig.driver.set_current_limit(16)
    await rig.offering(16, then_advance_s=150)
    resumed = await rig.until(
        "resumed", cp_state=CpState.C2, current_a=(16.0, 16.0, 16.0), setpoint_a=16.0
    )
    assert resumed.enabled is True
    assert resumed.energy_wh > paused.energy_wh

    # Disable and enable.
    await rig.driver.set_enabled(False)
    await rig.offering(0, then_advance_s=1)
    await rig.until("disabled", cp_state=CpState.B1, current_a=(0.0, 0.0, 0.0))
    await rig.driver.set_enabled(True)
    await rig.offering(16, then_advance_s=150)
    await rig.until("enabled again", cp_state=CpState.C2, current_a=(16.0, 16.0, 16.0))

    # Unplug.
    rig.cp.unplug()
    rig.clock.advance(1)
    gone = await rig.until("unplugged", cp_state=CpState.A, current_a=(0.0, 0.0, 0.0))
    assert gone.energy_wh == pytest.approx(rig.cp.energy_wh, abs=1.0)


# go-e is left out: its `trx` gives a card index, not the tag, and is not mapped.
@pytest.mark.parametrize("style_name", ["openWB", "evgw"])
async def test_rfid_is_reported_once(rig: Rig) -> None:
    rig.cp.plug_in(rfid="04A1B2C3")
    # The tag and the plug state arrive on separate topics (openWB), in either order: wait
    # for the reading that carries the tag; the next one must not carry it again.
    await rig.until("tag", rfid="04A1B2C3")
    plugged = await rig.until("plugged", cp_state=CpState.B1)
    assert plugged.rfid is None
    assert (await rig.reading()).rfid is None


async def test_full_ev_is_b2_and_fault_is_f(rig: Rig) -> None:
    await rig.driver.set_current_limit(16)
    rig.cp.plug_in(energy_needed_wh=100, max_current_a=16)
    await rig.offering(16, then_advance_s=600)
    await rig.until("full", cp_state=CpState.B2, current_a=(0.0, 0.0, 0.0))
    if rig.style_name == "openWB":
        return  # no fault key in the openWB generic MQTT chargepoint
    rig.cp.inject_fault(error_code=7)
    faulted = await rig.until("fault", cp_state=CpState.F)
    assert faulted.error_code == 7
    assert faulted.ocpp_error_code is OcppErrorCode.OTHER_ERROR
    rig.cp.clear_fault()
    cleared = await rig.until("fault cleared", cp_state=CpState.B2, error_code=0)
    assert cleared.ocpp_error_code is OcppErrorCode.NO_ERROR


async def test_phase_switching_reaches_the_simulator(rig: Rig) -> None:
    await rig.driver.set_phases(1)
    await eventually(lambda: _expect(rig.cp.phases == 1), what="1 phase")
    await rig.driver.set_current_limit(10)
    rig.cp.plug_in(max_current_a=32, phases=3)
    await rig.offering(10, then_advance_s=150)
    await rig.until("single phase", current_a=(10.0, 0.0, 0.0))
    await rig.driver.set_phases(3)
    await eventually(lambda: _expect(rig.cp.phases == 3), what="3 phases")
    with pytest.raises(ValueError, match="1 or 3"):
        await rig.driver.set_phases(2)


# ---------------------------------------------------------------------- setpoints


async def test_setpoint_floor_and_rounding_down(rig: Rig) -> None:
    for amps in (0.5, 3, 5.99):
        with pytest.raises(ValueError, match=r"below the 6\.0 A minimum"):
            await rig.driver.set_current_limit(amps)
    for amps in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="not a current"):
            await rig.driver.set_current_limit(amps)
    await rig.driver.set_current_limit(10.79)
    expected = 10.0 if rig.style_name == "go-e" else 10.7
    await eventually(lambda: _expect(rig.cp.setpoint_a == expected), what="rounded down")
    await rig.driver.set_current_limit(500)  # capped at the style's maximum
    cap = rig.driver.max_current_a
    await eventually(lambda: _expect(rig.cp.setpoint_a == cap), what="capped")


# openWB is left out: it has no result topic to refuse a command on.
@pytest.mark.parametrize("style_name", ["go-e", "evgw"])
async def test_negative_result_raises_with_the_reason(rig: Rig) -> None:
    rig.sim.refuse_commands = "MQTT writes are read-only (mcr)"
    with pytest.raises(ChargerUnavailable, match=r"refused: .*read-only \(mcr\)"):
        await rig.driver.set_current_limit(16)
    rig.sim.refuse_commands = None
    await rig.driver.set_current_limit(16)
    await eventually(lambda: _expect(rig.cp.setpoint_a == 16.0), what="accepted again")


async def test_missing_result_raises(broker: LocalBroker) -> None:
    # No charger at all: the publication is acknowledged by the broker, the result never comes.
    async with MqttClient(MqttConfig(port=broker.port, client_id="gw")) as client:
        for style in (goe_style("nobody"), evgw_style("nobody")):
            driver = MqttCharger(client, style, result_timeout_s=0.3)
            await driver.start()
            with pytest.raises(ChargerUnavailable, match="no result"):
                await driver.set_current_limit(16)
            await driver.close()


async def test_keepalive_republishes_the_commanded_state(
    broker: LocalBroker, clock: ManualClock
) -> None:
    setup = await _rig(broker, clock, "evgw", evgw_style("cp-7", watchdog_s=0.4))
    try:
        await setup.driver.set_current_limit(12)
        sent = len(setup.sim.commands)
        await eventually(
            lambda: _expect(len(setup.sim.commands) >= sent + 3), what="three keep-alives"
        )
        assert setup.driver.keepalives_sent >= 3
        topic, payload = setup.sim.commands[-1]
        assert topic == "evgw/chargers/cp-7/set"
        assert b'"current_a":12.0' in payload
        assert b'"watchdog_s":0.4' in payload
        assert setup.cp.watchdog_timeout_s == 0.4
        # The simulated charger's watchdog (on its clock) is fed by every keep-alive.
        await eventually(lambda: _expect(not setup.cp.watchdog_tripped), what="fed")
    finally:
        await setup.driver.close()
        await setup.sim.stop()
        await setup.client.close()


async def test_goe_resends_its_state_after_the_charger_restarts(
    broker: LocalBroker, clock: ManualClock
) -> None:
    setup = await _rig(broker, clock, "go-e", goe_style("000123"))
    sim = setup.sim
    assert isinstance(sim, GoeSimulator)
    try:
        await setup.driver.set_current_limit(10)
        assert (sim.amp, sim.frc) == (10, 2)
        await sim.crash()
        await setup.unavailable("offline")
        await sim.restart()  # forgets the current set over the API (§5), amp back to 16
        await eventually(lambda: _expect((sim.amp, sim.frc) == (10, 2)), what="resent")
        await setup.until("back", cp_state=CpState.A, setpoint_a=10.0)
    finally:
        await setup.driver.close()
        await sim.stop()
        await setup.client.close()


# ---------------------------------------------------------------------- availability


async def test_unavailable_before_the_first_complete_state(broker: LocalBroker) -> None:
    async with MqttClient(MqttConfig(port=broker.port, client_id="gw")) as client:
        for name in STYLES:
            driver = MqttCharger(client, make_style(name), stale_after_s=STALE_S)
            await driver.start()
            with pytest.raises(ChargerUnavailable, match=r"not yet online|no complete state"):
                await driver.read()
            await driver.close()
        # Online, but only some of the keys: still no reading.
        driver = MqttCharger(client, goe_style("9"), stale_after_s=STALE_S)
        await driver.start()
        await client.publish("go-eCharger/9/mcc", b"true", retain=True)
        await client.publish("go-eCharger/9/car", b"1", retain=True)
        await eventually(
            lambda: _unavailable(driver.read(), "missing amp, currents, eto, frc"),
            what="incomplete",
        )
        await driver.close()


async def test_charger_crash_fires_the_last_will(rig: Rig) -> None:
    await rig.until("up", cp_state=CpState.A)
    await rig.sim.crash()
    message = await rig.unavailable("offline")
    assert rig.style.availability is not None
    assert rig.style.availability.topic in message
    assert rig.driver.online is False
    await rig.sim.restart()
    await rig.until("back after restart", cp_state=CpState.A)
    assert rig.driver.online is True


async def test_stale_data_makes_the_charger_unavailable(rig: Rig) -> None:
    await rig.until("up", cp_state=CpState.A)
    rig.sim.go_silent()
    message = await rig.unavailable("stale data")
    assert f"timeout {STALE_S} s" in message
    rig.sim.resume()
    await rig.until("fresh again", cp_state=CpState.A)


async def test_openwb_without_availability_topic_relies_on_staleness(
    broker: LocalBroker, clock: ManualClock
) -> None:
    cp = SimulatedChargePoint(clock=clock)
    sim = OpenWbSimulator(MqttConfig(port=broker.port), 5, charge_point=cp, interval_s=PUBLISH_S)
    await sim.start()
    async with MqttClient(MqttConfig(port=broker.port, client_id="gw")) as client:
        driver = MqttCharger(client, openwb_style(5), stale_after_s=STALE_S)
        await driver.start()
        await eventually(driver.read, what="reading")
        await sim.crash()
        await eventually(lambda: _unavailable(driver.read(), "stale data"), what="stale")
        await driver.close()


async def test_broker_restart_mid_session(rig: Rig) -> None:
    await start_charging(rig, 10)
    await rig.broker.restart()
    # Right after the restart the gateway is (or soon will be) without its connection.
    await eventually(
        lambda: _expect(rig.client.connect_count >= 2 and rig.client.connected),
        what="gateway reconnected",
    )
    await rig.until("reading after restart", cp_state=CpState.C2, current_a=(10.0, 10.0, 10.0))

    async def write() -> None:
        await rig.driver.set_current_limit(12)

    # The simulator may reconnect a moment after the gateway: retry until the write lands.
    await eventually(write, what="setpoint written after the restart")
    await rig.offering(12, then_advance_s=150)
    await rig.until("12 A after restart", current_a=(12.0, 12.0, 12.0), setpoint_a=12.0)


async def test_no_broker_connection_means_unavailable(rig: Rig) -> None:
    await rig.until("up", cp_state=CpState.A)
    await rig.broker.stop()
    await rig.unavailable("no connection to the MQTT broker")
    with pytest.raises(ChargerUnavailable, match="not connected"):
        await rig.driver.set_current_limit(16)
    await rig.broker.start()
    await rig.until("back", cp_state=CpState.A)


# ---------------------------------------------------------------------- garbage


GARBAGE: dict[str, list[tuple[str, bytes, str]]] = {
    "go-e": [
        ("go-eCharger/000123/car", b"{not json", "not_json"),
        ("go-eCharger/000123/car", b"9", "unknown_state"),
        ("go-eCharger/000123/amp", b'"sixteen"', "wrong_type"),
        ("go-eCharger/000123/amp", b"300", "out_of_range"),
        ("go-eCharger/000123/nrg", b"[1, 2]", "wrong_type"),
        ("go-eCharger/000123/nrg", b"[230,230,230,0,-5,0,0,0,0,0,0,0]", "out_of_range"),
        ("go-eCharger/000123/frc", b"true", "wrong_type"),
        ("go-eCharger/000123/eto", b"", "empty"),
        ("go-eCharger/000123/mcc", b"maybe", "not_json"),
    ],
    "openWB": [
        ("openWB/mqtt/chargepoint/3/get/power", b"\xff\xfe", "not_json"),
        ("openWB/mqtt/chargepoint/3/get/currents", b"[1, 2]", "wrong_type"),
        ("openWB/mqtt/chargepoint/3/get/currents", b"[1, 2, 1e999]", "not_json"),
        ("openWB/mqtt/chargepoint/3/get/voltages", b"[230, 230, -230]", "out_of_range"),
        ("openWB/mqtt/chargepoint/3/get/plug_state", b"1", "wrong_type"),
        ("openWB/mqtt/chargepoint/3/get/imported", b"-4", "out_of_range"),
        ("openWB/mqtt/chargepoint/3/get/rfid", b"42", "wrong_type"),
    ],
    "evgw": [
        ("evgw/chargers/cp-7/state", b"<xml/>", "not_json"),
        ("evgw/chargers/cp-7/state", b"[]", "wrong_type"),
        ("evgw/chargers/cp-7/state", b'{"schema": 1}', "missing_field"),
        ("evgw/chargers/cp-7/state", b'{"schema": 2, "cp_state": "A"}', "unsupported_schema"),
        (
            "evgw/chargers/cp-7/state",
            b'{"schema":1,"cp_state":"X","enabled":true,"setpoint_a":0,"currents_a":[0,0,0],'
            b'"power_w":0,"energy_wh":0}',
            "unknown_state",
        ),
        (
            "evgw/chargers/cp-7/state",
            b'{"schema":1,"cp_state":"C2","enabled":true,"setpoint_a":16,"currents_a":[0,0,0],'
            b'"power_w":-5,"energy_wh":0}',
            "out_of_range",
        ),
        ("evgw/chargers/cp-7/availability", b"dunno", "out_of_range"),
    ],
}


async def test_garbage_is_counted_and_logged_and_the_last_good_state_stays(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    good = await start_charging(rig, 10)
    caplog.set_level(logging.WARNING, logger="gateway.mqtt.driver")
    garbage = GARBAGE[rig.style_name]
    for topic, payload, _ in garbage:
        # Not retained, so the broker's retained state stays good for later subscribers.
        await rig.sim.inject(topic, payload)

    expected: dict[str, int] = {}
    for _, _, reason in garbage:
        expected[reason] = expected.get(reason, 0) + 1

    async def counted() -> None:
        assert rig.driver.malformed == expected

    await eventually(counted, what="every garbage payload counted")
    assert rig.driver.malformed_total == len(garbage)
    # The state right afterwards is the last good one (the physics clock stands still).
    after = await rig.reading()
    assert after.cp_state is CpState.C2
    assert after.current_a == pytest.approx(good.current_a, abs=0.01)
    assert after.energy_wh == pytest.approx(good.energy_wh, abs=0.01)
    assert after.setpoint_a == good.setpoint_a
    assert rig.driver.online is not False
    # Each one was logged with its topic and reason.
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.mqtt.driver"]
    for topic, _, reason in garbage:
        assert any(topic in line and f"({reason})" in line for line in logged), (topic, reason)
    # And the loop is fine: the charger still follows commands.
    await rig.driver.set_current_limit(14)
    await rig.offering(14, then_advance_s=150)
    await rig.until("still driven", current_a=(14.0, 14.0, 14.0))


async def _expect(condition: bool) -> None:
    assert condition


async def _unavailable(read: Coroutine[Any, Any, ChargerReading], match: str) -> str:
    """The message of the ChargerUnavailable `read` raises; AssertionError otherwise (so
    `eventually` retries: pytest.raises's failure is not an Exception)."""
    try:
        reading = await read
    except ChargerUnavailable as exc:
        message = str(exc)
    else:
        raise AssertionError(f"read() returned {reading}")
    assert re.search(match, message), message
    return message
