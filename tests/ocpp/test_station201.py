"""End to end on OCPP 2.0.1: a simulated Modbus charger (real pymodbus server) → the gateway as
`evgw run` wires it → a CSMS built on the `ocpp` package's `ocpp.v201`, over a real WebSocket
on loopback, with the real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import NotSupportedError
from ocpp.v201 import call

from gateway.config import ChargerSection, GatewayConfig, GatewaySection, UpstreamSection
from gateway.modbus import SimulatedCharger
from gateway.ocpp.transaction_queue import TransactionOutbox
from gateway.ocpp.v201.device_model import AttributeStatus, DeviceModel
from gateway.ocpp.v201.station import Station201
from gateway.runtime import Gateway
from gateway.store import Store
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, Received
from tests.ocpp.central_system_ocpp201 import Csms201

CHARGER_ID = "CP 201/ä"  # needs percent-encoding in the URL


@pytest.fixture
async def csms201() -> AsyncIterator[Csms201]:
    central_system = Csms201()
    await central_system.start()
    yield central_system
    await central_system.stop()


@contextlib.asynccontextmanager
async def running_gateway(
    csms: Csms201,
    simulator: SimulatedCharger,
    store: Path,
    *,
    upstream_version: str = "2.0.1",
    charger_version: str | None = None,
) -> AsyncIterator[Station201]:
    assert simulator.port is not None
    config = GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(
            url=csms.url,
            ocpp_version=upstream_version,
            heartbeat_interval_s=300,
            meter_value_sample_interval_s=1,
            connection_timeout_s=60,
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
                serial_number="SN-0201",
                ocpp_version=charger_version,
            ),
        ),
    )
    gateway = await Gateway.open(config)
    assert gateway.stations == {}  # no 1.6 charge point for this charger
    station = gateway.stations_201[CHARGER_ID]
    # Short reconnect back-off and replay pace, so tests do not wait for production values.
    station.backoff.minimum_s = 0.1
    station.backoff.random_range_s = 0.1
    station.backoff.repeat_times = 1
    station.pacer.interval_s = 0.02
    task = asyncio.create_task(gateway.run())
    try:
        yield station
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.close()


def statuses(received: list[Received]) -> list[str]:
    return [m.payload["connector_status"] for m in received if m.action == "StatusNotification"]


def has_status(status: str, count: int = 1) -> Callable[[list[Received]], bool]:
    return lambda got: statuses(got).count(status) >= count


def events(received: list[Received]) -> list[dict[str, Any]]:
    return [m.payload for m in received if m.action == "TransactionEvent"]


def has_event(event_type: str) -> Callable[[list[Received]], bool]:
    return lambda got: any(e["event_type"] == event_type for e in events(got))


def measurands(event: dict[str, Any]) -> dict[tuple[str, str | None], float]:
    samples = event["meter_value"][0]["sampled_value"]
    return {(s["measurand"], s.get("phase")): float(s["value"]) for s in samples}


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        # Polled: the gateway's connection state offers no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_boot_status_and_heartbeat_with_a_per_charger_version(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms201.boot_answers = [("Accepted", 1)]
    async with running_gateway(
        csms201,
        simulator,
        tmp_path / "evgw.sqlite3",
        upstream_version="1.6",
        charger_version="2.0.1",
    ):
        (boot,) = await csms201.wait_for_action(CHARGER_ID, "BootNotification")
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        await csms201.wait_for_action(CHARGER_ID, "Heartbeat")
    assert boot.payload["reason"] == "PowerUp"
    station = boot.payload["charging_station"]
    assert station["vendor_name"] == "ACME"
    assert station["model"] == "Sim 11"
    assert station["serial_number"] == "SN-0201"
    assert station["firmware_version"].startswith("evgw ")
    status = next(
        m.payload for m in csms201.received[CHARGER_ID] if m.action == "StatusNotification"
    )
    assert (status["evse_id"], status["connector_id"]) == (1, 1)


async def test_pending_boot_is_retried_and_nothing_else_is_sent_meanwhile(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms201.boot_answers = [("Pending", 1), ("Accepted", 1)]
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3"):
        await csms201.wait_for_action(CHARGER_ID, "Heartbeat")
        actions = [m.action for m in csms201.received[CHARGER_ID]]
    assert actions[:3] == ["BootNotification", "BootNotification", "StatusNotification"]


async def test_rfid_session_authorize_started_updated_ended_with_continuous_seq_no(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store_path = tmp_path / "evgw.sqlite3"
    async with running_gateway(csms201, simulator, store_path):
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        energy_before = simulator.energy_wh
        simulator.plug_in(rfid="TAG-0201", energy_needed_wh=50_000)
        (authorize,) = await csms201.wait_for_action(CHARGER_ID, "Authorize")
        await csms201.wait_for(
            CHARGER_ID,
            lambda got: any(e["trigger_reason"] == "MeterValuePeriodic" for e in events(got)),
        )
        simulator.unplug()
        received = await csms201.wait_for(CHARGER_ID, has_event("Ended"))
        await csms201.wait_for(CHARGER_ID, has_status("Available", count=2))
        energy_after = simulator.energy_wh

    assert authorize.payload["id_token"] == {"id_token": "TAG-0201", "type": "ISO14443"}
    sent = events(received)
    started, *updated, ended = sent
    assert [e["seq_no"] for e in sent] == list(range(len(sent)))
    transaction_id = started["transaction_info"]["transaction_id"]
    assert len(transaction_id) == 36  # a UUID
    assert all(e["transaction_info"]["transaction_id"] == transaction_id for e in sent)
    assert started["event_type"] == "Started"
    assert started["trigger_reason"] == "Authorized"
    assert started["id_token"] == {"id_token": "TAG-0201", "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connector_id": 1}
    assert measurands(started)[("Energy.Active.Import.Register", None)] == round(energy_before)
    assert all(e["event_type"] == "Updated" for e in updated)
    assert "offline" not in started
    charging = [
        e["transaction_info"]["charging_state"]
        for e in updated
        if e["trigger_reason"] == "ChargingStateChanged"
    ]
    assert "Charging" in charging
    periodic = next(e for e in updated if e["trigger_reason"] == "MeterValuePeriodic")
    values = measurands(periodic)
    assert values[("Energy.Active.Import.Register", None)] >= round(energy_before)
    assert {("Current.Import", phase) for phase in ("L1", "L2", "L3")} <= values.keys()
    assert ("Power.Active.Import", None) in values
    sampled = periodic["meter_value"][0]["sampled_value"]
    assert all(s["context"] == "Sample.Periodic" for s in sampled)
    assert ended["event_type"] == "Ended"
    assert ended["trigger_reason"] == "EVDeparted"
    assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
    assert measurands(ended)[("Energy.Active.Import.Register", None)] == round(energy_after)
    assert statuses(received)[:2] == ["Available", "Occupied"]

    store = await Store.open(store_path)
    try:
        (session,) = await store.sessions()
    finally:
        await store.close()
    assert session.upstream_transaction_id == transaction_id


async def test_request_start_and_stop_transaction_drive_the_charger(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3"):
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        station = csms201.stations[CHARGER_ID]
        wrong_evse = await station.call(
            call.RequestStartTransaction(
                id_token={"id_token": "APP-1", "type": "Central"}, remote_start_id=6, evse_id=2
            )
        )
        assert wrong_evse.status == "Rejected"
        answer = await station.call(
            call.RequestStartTransaction(
                id_token={"id_token": "APP-1", "type": "Central"}, remote_start_id=7, evse_id=1
            )
        )
        assert answer.status == "Accepted"
        simulator.plug_in(rfid=None, energy_needed_wh=50_000)
        received = await csms201.wait_for(CHARGER_ID, has_event("Started"))
        started = events(received)[0]
        assert started["trigger_reason"] == "RemoteStart"
        assert started["transaction_info"]["remote_start_id"] == 7
        assert started["id_token"] == {"id_token": "APP-1", "type": "Central"}
        await wait_until(lambda: simulator.enabled)

        unknown = await station.call(call.RequestStopTransaction(transaction_id="no-such-tx"))
        assert unknown.status == "Rejected"
        transaction_id = started["transaction_info"]["transaction_id"]
        stopped = await station.call(call.RequestStopTransaction(transaction_id=transaction_id))
        assert stopped.status == "Accepted"
        received = await csms201.wait_for(CHARGER_ID, has_event("Ended"))
        assert not simulator.enabled
        simulator.unplug()
    ended = events(received)[-1]
    assert ended["trigger_reason"] == "RemoteStop"
    assert ended["transaction_info"]["stopped_reason"] == "Remote"
    assert [e["seq_no"] for e in events(received)] == list(range(len(events(received))))


def variable(component: str, name: str, instance: str | None = None) -> dict[str, Any]:
    wanted: dict[str, Any] = {"component": {"name": component}, "variable": {"name": name}}
    if instance is not None:
        wanted["variable"]["instance"] = instance
    return wanted


async def test_get_and_set_variables_answer_per_variable(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3") as gateway_station:
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        station = csms201.stations[CHARGER_ID]
        got = await station.call(
            call.GetVariables(
                get_variable_data=[
                    variable("OCPPCommCtrlr", "HeartbeatInterval"),
                    variable("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
                    variable("TxCtrlr", "StopTxOnInvalidId"),
                    variable("NoSuchCtrlr", "Enabled"),
                    variable("AuthCtrlr", "NoSuchVariable"),
                    {
                        **variable("SampledDataCtrlr", "TxUpdatedInterval"),
                        "attribute_type": "Target",
                    },
                ]
            )
        )
        results = got.get_variable_result
        assert [r["attribute_status"] for r in results] == [
            "Accepted",
            "Accepted",
            "Accepted",
            "UnknownComponent",
            "UnknownVariable",
            "NotSupportedAttributeType",
        ]
        assert results[0]["attribute_value"] == "30"  # the interval the boot answer gave
        assert results[1]["attribute_value"] == "5"
        assert results[2]["attribute_value"] == "true"
        assert results[3]["component"] == {"name": "NoSuchCtrlr"}

        set_ = await station.call(
            call.SetVariables(
                set_variable_data=[
                    {**variable("SampledDataCtrlr", "TxUpdatedInterval"), "attribute_value": "5"},
                    {
                        **variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
                        "attribute_value": "true",
                    },
                    {**variable("SampledDataCtrlr", "TxUpdatedMeasurands"), "attribute_value": "x"},
                    {**variable("TxCtrlr", "EVConnectionTimeOut"), "attribute_value": "soon"},
                    {**variable("TxCtrlr", "NoSuchVariable"), "attribute_value": "1"},
                    {**variable("NoSuchCtrlr", "Enabled"), "attribute_value": "true"},
                ]
            )
        )
        assert [r["attribute_status"] for r in set_.set_variable_result] == [
            "Accepted",
            "Accepted",
            "Rejected",  # read-only
            "Rejected",  # not a number
            "UnknownVariable",
            "UnknownComponent",
        ]
        model = gateway_station.device_model
        assert model.integer(("SampledDataCtrlr", "TxUpdatedInterval", None)) == 5
        assert model.flag(("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None))


async def test_malformed_unknown_and_unsupported_calls_get_2_0_1_call_errors(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3"):
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        station = csms201.stations[CHARGER_ID]
        with pytest.raises(NotSupportedError):
            await station.call(
                call.CustomerInformation(request_id=1, report=True, clear=False), suppress=False
            )
        reset = await station.call(call.Reset(type="Immediate"))
        assert reset.status == "Rejected"
        await csms201.send_raw(CHARGER_ID, "this is not json")
        await csms201.send_raw(CHARGER_ID, '[2, "u-1", "NoSuchAction", {}]')
        await csms201.send_raw(CHARGER_ID, '[2, "u-2", "RequestStopTransaction", {}]')
        await csms201.send_raw(CHARGER_ID, '[2, "u-3", "Reset", []]')
        await csms201.send_raw(CHARGER_ID, '[2, "u-4", "Reset", {"type": "Sometimes"}]')
        await wait_until(lambda: len(csms201.call_errors(CHARGER_ID)) >= 5)
        errors = csms201.call_errors(CHARGER_ID)
    assert errors["-1"] == "RpcFrameworkError"
    assert errors["u-1"] == "NotImplemented"
    assert errors["u-2"] == "OccurrenceConstraintViolation"
    assert errors["u-3"] == "FormatViolation"
    assert errors["u-4"] == "PropertyConstraintViolation"


async def test_a_session_while_the_csms_is_down_is_replayed_offline_and_in_order(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3") as station:
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        answer = await csms201.stations[CHARGER_ID].call(
            call.SetVariables(
                set_variable_data=[
                    {
                        **variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
                        "attribute_value": "true",
                    }
                ]
            )
        )
        assert answer.set_variable_result[0]["attribute_status"] == "Accepted"
        await csms201.stop()
        await wait_until(lambda: not station.connection.connected)

        simulator.plug_in(rfid="TAG-OFF", energy_needed_wh=50_000)
        await wait_until(lambda: len(station.outbox) >= 4)
        simulator.unplug()
        await wait_until(
            lambda: any(m.payload["eventType"] == "Ended" for m in station.outbox.messages)
        )
        queued = station.outbox.messages
        back_at = datetime.now(UTC)
        await csms201.start()
        received = await csms201.wait_for(CHARGER_ID, has_event("Ended"))
        await wait_until(lambda: len(station.outbox) == 0)

    sent = events(received)
    assert [e["seq_no"] for e in sent] == [m.payload["seqNo"] for m in queued]
    assert [e["seq_no"] for e in sent] == list(range(len(sent)))
    assert all(e["offline"] is True for e in sent)
    assert sent[0]["event_type"] == "Started"
    assert sent[-1]["event_type"] == "Ended"
    assert sent[-1]["transaction_info"]["stopped_reason"] == "EVDisconnected"
    times = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in sent]
    assert times == sorted(times)
    assert times[-1] <= back_at


async def test_faults_and_an_unreachable_charger_change_the_connector_status(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3"):
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        simulator.inject_fault(3)
        await csms201.wait_for(CHARGER_ID, has_status("Faulted"))
        simulator.clear_fault()
        await csms201.wait_for(CHARGER_ID, has_status("Available", count=2))
        port = simulator.port
        assert port is not None
        await simulator.stop()
        await csms201.wait_for(CHARGER_ID, has_status("Unavailable"))
        await simulator.start("127.0.0.1", port)
        received = await csms201.wait_for(CHARGER_ID, has_status("Available", count=3))
    assert statuses(received) == ["Available", "Faulted", "Available", "Unavailable", "Available"]


async def test_an_offline_start_the_csms_refuses_afterwards_is_stopped_deauthorized(
    csms201: Csms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms201.id_token_infos["TAG-BAD"] = {"status": "Invalid"}
    async with running_gateway(csms201, simulator, tmp_path / "evgw.sqlite3") as station:
        await csms201.wait_for(CHARGER_ID, has_status("Available"))
        station.device_model[("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None)] = True
        await csms201.stop()
        await wait_until(lambda: not station.connection.connected)
        simulator.plug_in(rfid="TAG-BAD", energy_needed_wh=50_000)
        await wait_until(lambda: len(station.outbox) >= 1)
        await csms201.start()
        received = await csms201.wait_for(CHARGER_ID, has_event("Ended"))
        assert not simulator.enabled
        cached = station.cache.get("TAG-BAD")
    assert cached is not None
    assert cached.status == "Invalid"
    started, *_, ended = events(received)
    assert started["offline"] is True
    assert started["id_token"] == {"id_token": "TAG-BAD", "type": "ISO14443"}
    assert ended["trigger_reason"] == "Deauthorized"
    assert ended["transaction_info"]["stopped_reason"] == "DeAuthorized"
    assert "offline" not in ended


# --- without a network -----------------------------------------------------------------------


def model() -> DeviceModel:
    return DeviceModel(
        heartbeat_interval_s=60,
        tx_updated_interval_s=30,
        ev_connection_timeout_s=60,
        message_timeout_s=30,
    )


def test_device_model_aliases_instances_and_attribute_types() -> None:
    device = model()
    results = device.get_variables(
        [
            variable("OCPPCommCtrlr", "MessageAttemptsTransactionEvent"),
            variable("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"),
            variable("OCPPCommCtrlr", "MessageTimeout"),
            variable("OCPPCommCtrlr", "MessageAttempts"),  # the instance is part of the name
            {
                "component": {"name": "TxCtrlr", "instance": "x"},
                "variable": {"name": "TxStopPoint"},
            },
            {**variable("TxCtrlr", "TxStopPoint"), "attributeType": "MaxSet"},
        ]
    )
    assert [r["attributeStatus"] for r in results] == [
        AttributeStatus.ACCEPTED,
        AttributeStatus.ACCEPTED,
        AttributeStatus.ACCEPTED,
        AttributeStatus.UNKNOWN_VARIABLE,
        AttributeStatus.UNKNOWN_COMPONENT,
        AttributeStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE,
    ]
    assert [r.get("attributeValue") for r in results[:3]] == ["5", "10", "30"]
    assert results[5]["attributeType"] == "MaxSet"


def test_device_model_set_applies_in_order_and_reports_changes() -> None:
    changes: list[tuple[Any, Any]] = []
    device = model()
    device.on_change = lambda key, value: changes.append((key, value))
    results = device.set_variables(
        [
            {**variable("OCPPCommCtrlr", "MessageAttemptsTransactionEvent"), "attributeValue": "3"},
            {
                **variable("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
                "attributeValue": "0",
            },
            {**variable("OCPPCommCtrlr", "MessageTimeout", "Default"), "attributeValue": "5"},
            {**variable("AuthCacheCtrlr", "Enabled"), "attributeValue": "FALSE"},
        ]
    )
    assert [r["attributeStatus"] for r in results] == [
        "Accepted",
        "Rejected",
        "Rejected",
        "Accepted",
    ]
    assert changes == [
        (("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"), 3),
        (("AuthCacheCtrlr", "Enabled", None), False),
    ]
    assert device.integer(("OCPPCommCtrlr", "MessageTimeout", "Default")) == 30


async def test_seq_no_continues_across_a_restart_from_the_store(tmp_path: Path) -> None:
    path = tmp_path / "evgw.sqlite3"
    at = datetime.now(UTC)

    def event(event_type: str, seq_no: int) -> dict[str, Any]:
        return {"eventType": event_type, "seqNo": seq_no, "transactionInfo": {"transactionId": "s"}}

    store = await Store.open(path)
    try:
        outbox = TransactionOutbox(store, "CP")
        await outbox.load()
        assert outbox.next_seq_no("s", None) == 0
        started = await outbox.append_event("s", event("Started", 0), at)
        assert started is not None
        assert await outbox.append_event("s", event("Started", 0), at) is None  # once per session
        await outbox.append_event("s", event("Updated", 1), at)
        await outbox.answered_event(started)
        assert outbox.next_seq_no("s", 0) == 2
    finally:
        await store.close()

    store = await Store.open(path)
    try:
        outbox = TransactionOutbox(store, "CP")
        await outbox.load()
        (updated,) = outbox.messages
        await outbox.answered_event(updated)
        last = (await store.upstream_transactions("CP"))["s"].transaction_id
        assert last == 1
        assert outbox.next_seq_no("s", last) == 2
        with pytest.raises(ValueError, match="eventType"):
            await outbox.append_event("s", {"seqNo": 3}, at)
    finally:
        await store.close()
