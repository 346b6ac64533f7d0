"""End to end: a simulated Modbus charger (real pymodbus server) → the gateway as `evgw run`
wires it → a central system built on the `ocpp` package, over a real WebSocket on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.v16 import call

from gateway.config import ChargerSection, GatewayConfig, GatewaySection, UpstreamSection
from gateway.modbus import SimulatedCharger
from gateway.runtime import Gateway
from gateway.store import Store
from tests.ocpp.central_system_ocpp import OcppPackageCsms, Received

CHARGER_ID = "CP 1/ä"  # needs percent-encoding in the URL


def statuses(received: list[Received], connector_id: int = 1) -> list[str]:
    return [
        m.payload["status"]
        for m in received
        if m.action == "StatusNotification" and m.payload["connector_id"] == connector_id
    ]


def has_status(status: str, connector_id: int = 1, count: int = 1):  # type: ignore[no-untyped-def]
    return lambda got: statuses(got, connector_id).count(status) >= count


@contextlib.asynccontextmanager
async def running_gateway(
    csms: OcppPackageCsms, simulator: SimulatedCharger, store: Path, **upstream: int
) -> AsyncIterator[Gateway]:
    assert simulator.port is not None
    config = GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(
            url=csms.url,
            heartbeat_interval_s=upstream.get("heartbeat_interval_s", 300),
            meter_value_sample_interval_s=upstream.get("meter_value_sample_interval_s", 1),
            connection_timeout_s=upstream.get("connection_timeout_s", 60),
        ),
        chargers=(
            ChargerSection(
                id=CHARGER_ID,
                host="127.0.0.1",
                port=simulator.port,
                poll_interval_s=0.2,
                max_current_a=16.0,
                vendor="ACME",
                model="Sim 11",
                serial_number="SN-0001",
            ),
        ),
    )
    gateway = await Gateway.open(config)
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.close()


async def test_rfid_session_flows_upstream_and_into_the_store(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store_path = tmp_path / "evgw.sqlite3"
    async with running_gateway(csms, simulator, store_path):
        boot = (await csms.wait_for_action(CHARGER_ID, "BootNotification"))[0].payload
        assert boot["charge_point_vendor"] == "ACME"
        assert boot["charge_point_model"] == "Sim 11"
        assert boot["charge_point_serial_number"] == "SN-0001"
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        energy_before = simulator.energy_wh

        simulator.plug_in(rfid="TAG-0001", energy_needed_wh=50_000)
        authorize = (await csms.wait_for_action(CHARGER_ID, "Authorize"))[0].payload
        assert authorize == {"id_tag": "TAG-0001"}
        start = (await csms.wait_for_action(CHARGER_ID, "StartTransaction"))[0].payload
        assert start["id_tag"] == "TAG-0001"
        assert start["connector_id"] == 1
        assert start["meter_start"] == round(energy_before)
        await csms.wait_for(CHARGER_ID, has_status("Charging"))

        meter_values = (await csms.wait_for_action(CHARGER_ID, "MeterValues", count=2))[-1]
        assert meter_values.payload["transaction_id"] == start["transaction_id"]
        samples = meter_values.payload["meter_value"][0]["sampled_value"]
        by_measurand: dict[tuple[str, str | None], float] = {
            (s["measurand"], s.get("phase")): float(s["value"]) for s in samples
        }
        assert all(s["context"] == "Sample.Periodic" for s in samples)
        assert by_measurand[("Energy.Active.Import.Register", None)] > energy_before
        currents = [by_measurand[("Current.Import", phase)] for phase in ("L1", "L2", "L3")]
        # The simulated EV draws 16 A on three phases once its current has settled; the
        # readings must carry the simulator's per-phase values (rounded to 0.1 A).
        simulated = simulator.phase_currents_a
        assert currents == pytest.approx(list(simulated), abs=1.0)
        assert by_measurand[("Power.Active.Import", None)] > 0

        simulator.unplug()
        stop = (await csms.wait_for_action(CHARGER_ID, "StopTransaction"))[0].payload
        assert stop["transaction_id"] == start["transaction_id"]
        assert stop["reason"] == "EVDisconnected"
        assert stop["meter_stop"] == round(simulator.energy_wh)
        assert stop["id_tag"] == "TAG-0001"
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=2))

    seen = statuses(received)
    assert seen == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    assert statuses(received, 0)[-1] == "Available"

    store = await Store.open(store_path)
    try:
        (session,) = await store.sessions()
    finally:
        await store.close()
    assert session.upstream_transaction_id == str(start["transaction_id"])
    assert session.id_tag == "TAG-0001"
    assert round(session.meter_start_wh) == start["meter_start"]
    assert session.meter_stop_wh is not None
    assert round(session.meter_stop_wh) == stop["meter_stop"]
    assert session.stop_reason is not None
    assert session.stop_reason.value == "EVDisconnected"


async def test_remote_start_and_stop_drive_the_charger(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        # Accepted without a vehicle: the session starts when one plugs in.
        answer = await charge_point.call(
            call.RemoteStartTransaction(id_tag="APP-1", connector_id=1)
        )
        assert answer.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Preparing"))
        simulator.plug_in(rfid=None, energy_needed_wh=50_000)
        start = (await csms.wait_for_action(CHARGER_ID, "StartTransaction"))[0].payload
        assert start["id_tag"] == "APP-1"
        await csms.wait_for(CHARGER_ID, has_status("Charging"))
        setpoints = [w.value for w in simulator.writes if w.register == "setpoint"]
        enables = [w.value for w in simulator.writes if w.register == "enable"]
        assert setpoints[-1] == pytest.approx(16.0)
        assert enables[-1] == 1
        assert simulator.enabled

        unknown = await charge_point.call(call.RemoteStopTransaction(transaction_id=999_999))
        assert unknown.status == "Rejected"
        stopped = await charge_point.call(
            call.RemoteStopTransaction(transaction_id=start["transaction_id"])
        )
        assert stopped.status == "Accepted"
        stop = (await csms.wait_for_action(CHARGER_ID, "StopTransaction"))[0].payload
        assert stop["reason"] == "Remote"
        assert not simulator.enabled
        assert stop["meter_stop"] == round(simulator.energy_wh)
        await csms.wait_for(CHARGER_ID, has_status("Finishing"))
        # A second remote start while the connector is busy is refused... once it is free
        # again (vehicle still plugged, Finishing) it is accepted.
        simulator.unplug()
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))


async def test_pending_boot_is_retried_after_the_interval(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms.boot_answers = [("Pending", 1), ("Accepted", 1)]
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        received = await csms.wait_for_action(CHARGER_ID, "Heartbeat")
        everything = csms.received[CHARGER_ID]
    actions = [m.action for m in everything]
    assert actions[:2] == ["BootNotification", "BootNotification"]
    assert received  # heartbeats at the interval the Accepted boot gave


async def test_unsupported_unknown_and_malformed_calls_get_call_errors(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        with pytest.raises(NotSupportedError):
            # A firmware update cannot apply to a Modbus charger: NotSupported.
            await charge_point.call(
                call.UpdateFirmware(
                    location="https://example.com/fw.bin", retrieve_date="2030-01-01T00:00:00Z"
                ),
                suppress=False,
            )
        frames = csms.raw_frames[CHARGER_ID]
        await charge_point._connection.send("this is not json")
        await charge_point._connection.send('[2, "u-1", "NoSuchAction", {}]')
        await charge_point._connection.send('[2, "u-2", "RemoteStartTransaction", {}]')
        # The answers reach the ocpp package's receive loop; read them from the raw frames.
        await csms.wait_for(CHARGER_ID, lambda _: sum(1 for f in frames if f.startswith("[4")) >= 3)
        errors = {
            parsed[1]: parsed[2] for parsed in (orjson.loads(f) for f in frames) if parsed[0] == 4
        }
        assert errors["-1"] == "FormationViolation"
        assert errors["u-1"] == "NotImplemented"
        assert errors["u-2"] == "OccurenceConstraintViolation"

        configuration = await charge_point.call(
            call.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"])
        )
        assert configuration.unknown_key == ["NoSuchKey"]
        assert configuration.configuration_key[0]["key"] == "HeartbeatInterval"
        changed = await charge_point.call(call.ChangeConfiguration(key="NoSuchKey", value="1"))
        assert changed.status == "NotSupported"
        changed = await charge_point.call(
            call.ChangeConfiguration(key="MeterValueSampleInterval", value="5")
        )
        assert changed.status == "Accepted"


async def test_unreachable_charger_is_reported_unavailable_and_back(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        port = simulator.port
        assert port is not None
        await simulator.stop()
        await csms.wait_for(CHARGER_ID, has_status("Unavailable"))
        await simulator.start("127.0.0.1", port)
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
    assert statuses(received) == ["Available", "Unavailable", "Available"]
    assert statuses(received, 0)[-2:] == ["Unavailable", "Available"]


async def test_a_charger_fault_reaches_the_central_system_with_its_ocpp_and_vendor_codes(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        simulator.inject_fault(3)  # the generic profile's over-temperature code
        received = await csms.wait_for(CHARGER_ID, has_status("Faulted"))
        simulator.clear_fault()
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
    faulted = next(
        m.payload
        for m in received
        if m.action == "StatusNotification" and m.payload["status"] == "Faulted"
    )
    assert faulted["error_code"] == "HighTemperature"
    assert faulted["vendor_error_code"] == "3"
