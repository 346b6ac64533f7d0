"""OCPP 2.0.1 remote trigger, availability, unlock, reports, the local list, logs, data
transfer and security events, end to end: a simulated Modbus charger → the gateway as `evgw
run` wires it → a CSMS on the `ocpp` package's `ocpp.v201` over a real WebSocket; uploads go
to a real HTTP server on loopback. Every action 2.0.1 defines gets an answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from ocpp.v201 import call

from gateway.modbus import SimulatedCharger
from gateway.ocpp.v201.station import codec201
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, Received
from tests.ocpp.minimal_payloads import minimal_request
from tests.ocpp.secure_csms import SecureCsms201
from tests.ocpp.test_station201 import (
    CHARGER_ID,
    events,
    has_event,
    has_status,
    running_gateway,
    statuses,
)
from tests.ocpp.upload_server import UploadServer


@pytest.fixture
async def csms() -> AsyncIterator[SecureCsms201]:
    central_system = SecureCsms201()
    await central_system.start()
    yield central_system
    await central_system.stop()


@pytest.fixture
async def uploads() -> AsyncIterator[UploadServer]:
    server = UploadServer()
    await server.start()
    yield server
    await server.stop()


def payloads(received: list[Received], action: str) -> list[dict[str, Any]]:
    return [m.payload for m in received if m.action == action]


def count(action: str, at_least: int) -> Callable[[list[Received]], bool]:
    return lambda got: len(payloads(got, action)) >= at_least


async def test_trigger_message_sends_each_message_it_can(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        answers = {}
        for requested in (
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "LogStatusNotification",
            "FirmwareStatusNotification",
            "TransactionEvent",  # no transaction in progress
            "SignChargingStationCertificate",
        ):
            answers[requested] = (
                await station.call(call.TriggerMessage(requested_message=requested))
            ).status
        wrong_evse = await station.call(
            call.TriggerMessage(requested_message="StatusNotification", evse={"id": 2})
        )
        received = await csms.wait_for(
            CHARGER_ID,
            lambda got: all(
                count(action, n)(got)
                for action, n in (
                    ("BootNotification", 2),
                    ("Heartbeat", 1),
                    ("StatusNotification", 2),
                    ("MeterValues", 1),
                    ("LogStatusNotification", 1),
                    ("FirmwareStatusNotification", 1),
                )
            ),
        )
    assert answers == {
        "BootNotification": "Accepted",
        "Heartbeat": "Accepted",
        "StatusNotification": "Accepted",
        "MeterValues": "Accepted",
        "LogStatusNotification": "Accepted",
        "FirmwareStatusNotification": "Accepted",
        "TransactionEvent": "Rejected",
        "SignChargingStationCertificate": "NotImplemented",
    }
    assert wrong_evse.status == "Rejected"
    assert payloads(received, "BootNotification")[1]["reason"] == "Triggered"
    meter = payloads(received, "MeterValues")[0]
    assert meter["evse_id"] == 1
    assert {v["context"] for v in meter["meter_value"][0]["sampled_value"]} == {"Trigger"}
    assert payloads(received, "LogStatusNotification") == [{"status": "Idle"}]
    assert payloads(received, "FirmwareStatusNotification") == [{"status": "Idle"}]


async def test_availability_unlock_and_a_triggered_transaction_event_around_a_session(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        unknown = await station.call(
            call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2})
        )
        idle_unlock = await station.call(call.UnlockConnector(evse_id=1, connector_id=1))
        wrong_unlock = await station.call(call.UnlockConnector(evse_id=2, connector_id=1))
        now = await station.call(call.ChangeAvailability(operational_status="Inoperative"))
        await csms.wait_for(CHARGER_ID, has_status("Unavailable"))
        back = await station.call(
            call.ChangeAvailability(operational_status="Operative", evse={"id": 1})
        )
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
        simulator.plug_in(rfid="TAG-0001", energy_needed_wh=50_000)
        await csms.wait_for(CHARGER_ID, has_event("Started"))
        busy_unlock = await station.call(call.UnlockConnector(evse_id=1, connector_id=1))
        triggered = await station.call(call.TriggerMessage(requested_message="TransactionEvent"))
        await csms.wait_for(
            CHARGER_ID,
            lambda got: any(e["trigger_reason"] == "Trigger" for e in events(got)),
        )
        scheduled = await station.call(call.ChangeAvailability(operational_status="Inoperative"))
        unavailable_before = statuses(csms.received[CHARGER_ID]).count("Unavailable")
        simulator.unplug()
        await csms.wait_for(CHARGER_ID, has_event("Ended"))
        await csms.wait_for(CHARGER_ID, has_status("Unavailable", count=unavailable_before + 1))
    assert unknown.status == "Rejected"
    assert (now.status, back.status, scheduled.status) == ("Accepted", "Accepted", "Scheduled")
    assert idle_unlock.status == "UnlockFailed"
    assert wrong_unlock.status == "UnknownConnector"
    assert busy_unlock.status == "OngoingAuthorizedTransaction"
    assert triggered.status == "Accepted"


async def test_get_base_report_sends_the_device_model_in_notify_report(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        full = await station.call(call.GetBaseReport(request_id=5, report_base="FullInventory"))
        configuration = await station.call(
            call.GetBaseReport(request_id=6, report_base="ConfigurationInventory")
        )
        summary = await station.call(
            call.GetBaseReport(request_id=7, report_base="SummaryInventory")
        )
        received = await csms.wait_for(CHARGER_ID, count("NotifyReport", 2))
    assert (full.status, configuration.status, summary.status) == (
        "Accepted",
        "Accepted",
        "NotSupported",
    )
    reports = {report["request_id"]: report for report in payloads(received, "NotifyReport")}
    assert set(reports) == {5, 6}
    entries = {
        (entry["component"]["name"], entry["variable"]["name"]): entry["variable_attribute"][0]
        for entry in reports[5]["report_data"]
    }
    assert entries[("OCPPCommCtrlr", "HeartbeatInterval")]["mutability"] == "ReadWrite"
    assert entries[("SecurityCtrlr", "SecurityProfile")] == {
        "type": "Actual",
        "mutability": "ReadOnly",
        "value": "0",
    }
    password = entries[("SecurityCtrlr", "BasicAuthPassword")]
    assert password == {"type": "Actual", "mutability": "WriteOnly"}
    writable = {entry["variable_attribute"][0]["mutability"] for entry in reports[6]["report_data"]}
    assert "ReadOnly" not in writable
    assert reports[5]["tbc"] is False


async def test_send_local_list_full_and_differential_with_its_version(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway_station:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        full = await station.call(
            call.SendLocalList(
                version_number=3,
                update_type="Full",
                local_authorization_list=[
                    {
                        "id_token": {"id_token": "CARD-1", "type": "ISO14443"},
                        "id_token_info": {"status": "Accepted"},
                    },
                    {
                        "id_token": {"id_token": "CARD-2", "type": "ISO14443"},
                        "id_token_info": {"status": "Blocked"},
                    },
                ],
            )
        )
        version = await station.call(call.GetLocalListVersion())
        stale = await station.call(
            call.SendLocalList(
                version_number=3,
                update_type="Differential",
                local_authorization_list=[
                    {"id_token": {"id_token": "CARD-2", "type": "ISO14443"}},
                ],
            )
        )
        newer = await station.call(
            call.SendLocalList(
                version_number=4,
                update_type="Differential",
                local_authorization_list=[
                    {"id_token": {"id_token": "CARD-2", "type": "ISO14443"}},
                ],
            )
        )
        entries = dict(gateway_station.local_list.entries)
    assert (full.status, stale.status, newer.status) == ("Accepted", "VersionMismatch", "Accepted")
    assert version.version_number == 3
    assert set(entries) == {"CARD-1"}


async def test_get_log_data_transfer_and_security_events(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path, uploads: UploadServer
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        received = await csms.wait_for(CHARGER_ID, count("SecurityEventNotification", 1))
        station = csms.stations[CHARGER_ID]
        log = await station.call(
            call.GetLog(
                log={"remote_location": uploads.location()},
                log_type="DiagnosticsLog",
                request_id=11,
            )
        )
        received = await csms.wait_for(
            CHARGER_ID,
            lambda got: (
                {"status": "Uploaded", "request_id": 11} in payloads(got, "LogStatusNotification")
            ),
        )
        path, body = await uploads.wait_for_file()
        data = await station.call(call.DataTransfer(vendor_id="com.example", message_id="x"))
    assert log.status == "Accepted"
    assert log.filename is not None
    assert path == f"/upload/{log.filename}"
    assert body[:2] == b"\x1f\x8b"  # the gateway's tar.gz bundle
    assert payloads(received, "LogStatusNotification") == [
        {"status": "Uploading", "request_id": 11},
        {"status": "Uploaded", "request_id": 11},
    ]
    assert payloads(received, "SecurityEventNotification")[0]["type"] == "StartupOfTheDevice"
    assert data.status == "UnknownVendorId"


async def test_every_2_0_1_action_gets_a_result_or_not_implemented_or_not_supported(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        frames = csms.raw_frames[CHARGER_ID]
        answers: dict[str, list[Any]] = {}
        for action in codec201().actions():
            message_id = f"every-{action}"[:36]  # message ids are at most 36 characters
            frame = json.dumps([2, message_id, action, minimal_request("v201", action)])
            await csms.send_raw(CHARGER_ID, frame)
            async with asyncio.timeout(SAFETY_DEADLINE_S):
                while message_id not in answers:
                    for raw in frames:
                        parsed = orjson.loads(raw)
                        if parsed[0] in (3, 4) and parsed[1] == message_id:
                            answers[message_id] = parsed
                    await asyncio.sleep(0.02)
    wrong = {
        message_id: answer
        for message_id, answer in answers.items()
        if not (answer[0] == 3 or answer[2] in ("NotImplemented", "NotSupported"))
    }
    assert wrong == {}
    assert len(answers) == len(codec201().actions())
    results = {message_id.removeprefix("every-") for message_id, a in answers.items() if a[0] == 3}
    assert {
        "ChangeAvailability",
        "DataTransfer",
        "GetBaseReport",
        "GetLog",
        "SendLocalList",
        "TriggerMessage",
        "UnlockConnector",
    } <= results


async def test_statuses_are_reported_again_after_an_outage_longer_than_offline_threshold(
    csms: SecureCsms201, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, simulator, tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        threshold = {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "OfflineThreshold"},
        }
        read = await station.call(call.GetVariables(get_variable_data=[threshold]))
        changed = await station.call(
            call.SetVariables(set_variable_data=[{**threshold, "attribute_value": "0"}])
        )
        await csms.stop()
        await csms.start()
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
    assert read.get_variable_result[0]["attribute_value"] == "60"
    assert changed.set_variable_result[0]["attribute_status"] == "Accepted"
    assert statuses(received) == ["Available", "Available"]
