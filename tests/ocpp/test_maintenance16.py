"""OCPP 1.6 remote trigger, availability, unlock, reset, diagnostics, logs and data transfer,
end to end: a simulated Modbus charger → the gateway as `evgw run` wires it → a central
system on the `ocpp` package over a real WebSocket; uploads go to a real HTTP server on
loopback. Every action 1.6 defines gets an answer."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from ocpp.v16 import call

from gateway.modbus import SimulatedCharger
from gateway.ocpp.v16.station import codec16
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, Received
from tests.ocpp.minimal_payloads import minimal_request
from tests.ocpp.secure_csms import SecureCsms16
from tests.ocpp.test_station16 import CHARGER_ID, has_status, running_gateway, statuses
from tests.ocpp.upload_server import UploadServer


@pytest.fixture
async def csms16() -> AsyncIterator[SecureCsms16]:
    central_system = SecureCsms16()
    await central_system.start()
    yield central_system
    await central_system.stop()


@pytest.fixture
async def uploads() -> AsyncIterator[UploadServer]:
    server = UploadServer()
    await server.start()
    yield server
    await server.stop()


def payloads(received: list[Received], action: str) -> list[dict[str, object]]:
    return [m.payload for m in received if m.action == action]


def count(action: str, at_least: int) -> Callable[[list[Received]], bool]:
    return lambda got: len(payloads(got, action)) >= at_least


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def test_trigger_message_sends_each_message_after_its_answer(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms16.charge_points[CHARGER_ID]
        answers = {}
        for requested in (
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
        ):
            answers[requested] = (
                await charge_point.call(call.TriggerMessage(requested_message=requested))
            ).status
        wrong = await charge_point.call(
            call.TriggerMessage(requested_message="StatusNotification", connector_id=2)
        )
        received = await csms16.wait_for(
            CHARGER_ID,
            lambda got: all(
                count(action, n)(got)
                for action, n in (
                    ("BootNotification", 2),
                    ("Heartbeat", 1),
                    ("StatusNotification", 4),
                    ("MeterValues", 1),
                    ("DiagnosticsStatusNotification", 1),
                    ("FirmwareStatusNotification", 1),
                )
            ),
        )
        frames = list(csms16.raw_frames[CHARGER_ID])
    assert set(answers.values()) == {"Accepted"}
    assert wrong.status == "Rejected"
    meter = payloads(received, "MeterValues")[0]
    sampled = meter["meter_value"][0]["sampled_value"]  # type: ignore[index]
    assert {value["context"] for value in sampled} == {"Trigger"}
    assert payloads(received, "DiagnosticsStatusNotification") == [{"status": "Idle"}]
    assert payloads(received, "FirmwareStatusNotification") == [{"status": "Idle"}]
    # The triggered Heartbeat follows the TriggerMessage's answer on the wire.
    parsed = [orjson.loads(frame) for frame in frames]
    heartbeat = next(i for i, f in enumerate(parsed) if f[0] == 2 and f[2] == "Heartbeat")
    answer = max(i for i, f in enumerate(parsed[:heartbeat]) if f[0] == 3)
    assert answer < heartbeat


async def test_change_availability_takes_the_charger_out_of_service_now_or_after_the_session(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms16.charge_points[CHARGER_ID]
        other = await charge_point.call(call.ChangeAvailability(connector_id=2, type="Inoperative"))
        now = await charge_point.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
        await csms16.wait_for(CHARGER_ID, has_status("Unavailable"))
        # Out of service: a driver's card starts nothing and the charger gets no current.
        simulator.plug_in(rfid="TAG-0001", energy_needed_wh=50_000)
        await asyncio.sleep(1.0)  # several polls
        assert simulator.setpoint_a == 0 or not simulator.enabled
        assert CHARGER_ID not in csms16.received or not payloads(
            csms16.received[CHARGER_ID], "StartTransaction"
        )
        back = await charge_point.call(call.ChangeAvailability(connector_id=0, type="Operative"))
        await csms16.wait_for_action(CHARGER_ID, "StartTransaction")
        await csms16.wait_for(CHARGER_ID, has_status("Charging"))
        # A session runs: Inoperative is Scheduled and applied when it ends.
        scheduled = await charge_point.call(
            call.ChangeAvailability(connector_id=0, type="Inoperative")
        )
        unavailable_before = statuses(csms16.received[CHARGER_ID]).count("Unavailable")
        simulator.unplug()
        await csms16.wait_for_action(CHARGER_ID, "StopTransaction")
        await csms16.wait_for(CHARGER_ID, has_status("Unavailable", count=unavailable_before + 1))
    assert other.status == "Rejected"
    assert (now.status, back.status, scheduled.status) == ("Accepted", "Accepted", "Scheduled")


async def test_unlock_reset_and_data_transfer_get_the_spec_answers(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms16.charge_points[CHARGER_ID]
        unlock = await charge_point.call(call.UnlockConnector(connector_id=1))
        reset = await charge_point.call(call.Reset(type="Soft"))
        data = await charge_point.call(call.DataTransfer(vendor_id="com.example", data="hi"))
    assert unlock.status == "NotSupported"
    assert reset.status == "Rejected"
    assert data.status == "UnknownVendorId"


async def test_get_diagnostics_uploads_the_bundle_and_reports_each_step(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path, uploads: UploadServer
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms16.charge_points[CHARGER_ID]
        answer = await charge_point.call(call.GetDiagnostics(location=uploads.location()))
        received = await csms16.wait_for(
            CHARGER_ID,
            lambda got: {"status": "Uploaded"} in payloads(got, "DiagnosticsStatusNotification"),
        )
        path, body = await uploads.wait_for_file()
        failing = await charge_point.call(
            call.GetDiagnostics(location=uploads.location("broken"), retries=1, retry_interval=0)
        )
        received = await csms16.wait_for(
            CHARGER_ID,
            lambda got: (
                {"status": "UploadFailed"} in payloads(got, "DiagnosticsStatusNotification")
            ),
        )
        ftp = await charge_point.call(call.GetDiagnostics(location="ftp://example.com/diag/"))
    assert answer.file_name is not None
    assert answer.file_name.endswith(".tar.gz")
    assert path == f"/upload/{answer.file_name}"
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as bundle:
        assert bundle.getnames()  # a real bundle, not an empty file
    assert gzip.decompress(body)
    assert payloads(received, "DiagnosticsStatusNotification") == [
        {"status": "Uploading"},
        {"status": "Uploaded"},
        {"status": "Uploading"},
        {"status": "UploadFailed"},
    ]
    assert failing.file_name is not None
    assert uploads.failed_attempts == 2  # the first try and one retry
    assert ftp.file_name is None  # no file will come


async def test_get_log_uploads_the_security_log_with_log_status_notifications(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path, uploads: UploadServer
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(
            CHARGER_ID, lambda got: bool(payloads(got, "SecurityEventNotification"))
        )
        charge_point = csms16.charge_points[CHARGER_ID]
        answer = await charge_point.call(
            call.GetLog(
                log={"remoteLocation": uploads.location()}, log_type="SecurityLog", request_id=7
            )
        )
        received = await csms16.wait_for(
            CHARGER_ID,
            lambda got: (
                {"status": "Uploaded", "request_id": 7} in payloads(got, "LogStatusNotification")
            ),
        )
        _, body = await uploads.wait_for_file()
        refused = await charge_point.call(
            call.GetLog(log={"remoteLocation": "ftp://x/"}, log_type="DiagnosticsLog", request_id=8)
        )
        # The whitepaper's ExtendedTriggerMessage: the log status, now Idle.
        extended = await charge_point.call(
            call.ExtendedTriggerMessage(requested_message="LogStatusNotification")
        )
        signing = await charge_point.call(
            call.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
        )
        idle = await csms16.wait_for(
            CHARGER_ID,
            lambda got: {"status": "Idle"} in payloads(got, "LogStatusNotification"),
        )
    assert answer.status == "Accepted"
    assert answer.filename is not None
    assert "security" in answer.filename
    assert payloads(received, "LogStatusNotification")[:2] == [
        {"status": "Uploading", "request_id": 7},
        {"status": "Uploaded", "request_id": 7},
    ]
    assert (extended.status, signing.status) == ("Accepted", "NotImplemented")
    assert payloads(idle, "LogStatusNotification")[-1] == {"status": "Idle"}
    events = [json.loads(line) for line in body.decode().splitlines()]
    assert events[0]["type"] == "StartupOfTheDevice"
    assert refused.status == "Rejected"


async def test_every_1_6_action_gets_a_result_or_not_implemented_or_not_supported(
    csms16: SecureCsms16, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms16, simulator, tmp_path / "evgw.sqlite3"):
        await csms16.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms16.charge_points[CHARGER_ID]
        frames = csms16.raw_frames[CHARGER_ID]
        answers: dict[str, list[object]] = {}
        for action in codec16().actions():
            message_id = f"every-{action}"[:36]  # message ids are at most 36 characters
            frame = json.dumps([2, message_id, action, minimal_request("v16", action)])
            await charge_point._connection.send(frame)
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
    assert len(answers) == len(codec16().actions())
    results = {message_id.removeprefix("every-") for message_id, a in answers.items() if a[0] == 3}
    assert answers["every-UpdateFirmware"][2] == "NotSupported"
    assert {
        "ChangeAvailability",
        "DataTransfer",
        "ExtendedTriggerMessage",
        "GetDiagnostics",
        "GetLog",
        "Reset",
        "TriggerMessage",
        "UnlockConnector",
    } <= results
