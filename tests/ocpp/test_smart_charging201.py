"""OCPP 2.0.1 Smart Charging and Reservation end to end: a simulated Modbus charger (a real
pymodbus server) → the gateway as `evgw run` wires it (real SQLite store) → a CSMS built on the
`ocpp` package's `ocpp.v201`, over a real WebSocket on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import ServerConnection

from gateway.config import (
    BalancingSection,
    ChargerSection,
    CircuitSection,
    GatewayConfig,
    GatewaySection,
    UpstreamSection,
)
from gateway.modbus import SimulatedCharger
from gateway.runtime import Gateway
from tests.ocpp.central_system_ocpp import (
    SAFETY_DEADLINE_S,
    Received,
    RecordingConnection,
    handles,
)
from tests.ocpp.central_system_ocpp201 import Csms201, RecordingStation

CHARGER_ID = "SC-201"


class SmartChargingStation(RecordingStation):
    """The test CSMS's station, also taking the station-initiated smart charging, reservation
    and security messages."""

    @handles(Action.report_charging_profiles)
    def on_report(self, **payload: Any) -> Any:
        self._record("ReportChargingProfiles", **payload)
        return call_result.ReportChargingProfiles()

    @handles(Action.notify_charging_limit)
    def on_notify_limit(self, **payload: Any) -> Any:
        self._record("NotifyChargingLimit", **payload)
        return call_result.NotifyChargingLimit()

    @handles(Action.cleared_charging_limit)
    def on_cleared_limit(self, **payload: Any) -> Any:
        self._record("ClearedChargingLimit", **payload)
        return call_result.ClearedChargingLimit()

    @handles(Action.reservation_status_update)
    def on_reservation_update(self, **payload: Any) -> Any:
        self._record("ReservationStatusUpdate", **payload)
        return call_result.ReservationStatusUpdate()

    @handles(Action.security_event_notification)
    def on_security_event(self, **payload: Any) -> Any:
        self._record("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()


class SmartChargingCsms(Csms201):
    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = websocket.request.path.rsplit("/", 1)[-1]
        frames = self.raw_frames.setdefault(identity, [])
        station = SmartChargingStation(identity, RecordingConnection(websocket, frames), self)
        self.stations[identity] = station
        with contextlib.suppress(Exception):  # the connection closed
            await station.start()


@pytest.fixture
async def csms() -> AsyncIterator[SmartChargingCsms]:
    central_system = SmartChargingCsms()
    await central_system.start()
    yield central_system
    await central_system.stop()


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def statuses(received: list[Received]) -> list[str]:
    return [m.payload["connector_status"] for m in received if m.action == "StatusNotification"]


def has_status(status: str, count: int = 1) -> Callable[[list[Received]], bool]:
    return lambda got: statuses(got).count(status) >= count


def started(received: list[Received]) -> dict[str, Any]:
    return next(
        m.payload
        for m in received
        if m.action == "TransactionEvent" and m.payload["event_type"] == "Started"
    )


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        # The simulator's registers offer no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def profile(
    profile_id: int,
    limit: float,
    *,
    purpose: str = "TxDefaultProfile",
    stack_level: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": profile_id,
                "startSchedule": iso(now() - timedelta(minutes=1)),
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            }
        ],
        **extra,
    }


@contextlib.asynccontextmanager
async def running_gateway(
    csms: Csms201, simulators: list[SimulatedCharger], store: Path, *, fuse_a: float | None = None
) -> AsyncIterator[Gateway]:
    chargers = []
    for index, simulator in enumerate(simulators):
        assert simulator.port is not None
        chargers.append(
            ChargerSection(
                id=CHARGER_ID if index == 0 else f"{CHARGER_ID}-{index}",
                host="127.0.0.1",
                port=simulator.port,
                poll_interval_s=0.2,
                max_current_a=16.0,
                failsafe_current_a=6.0,
                circuit="fuse" if fuse_a is not None else None,
            )
        )
    config = GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(url=csms.url, ocpp_version="2.0.1", heartbeat_interval_s=300),
        chargers=tuple(chargers),
        # Raises in one tick, so the test takes seconds (ramping itself is unit-tested).
        balancing=BalancingSection(interval_s=1.0, ramp_a_per_s=50.0),
        circuits=()
        if fuse_a is None
        else (CircuitSection(id="fuse", max_current_a=(fuse_a, fuse_a, fuse_a)),),
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


async def test_profiles_are_set_reported_composed_and_cleared(
    csms: SmartChargingCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, [simulator], tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        simulator.plug_in(rfid="TAG-1", energy_needed_wh=80_000)
        await csms.wait_for(CHARGER_ID, has_status("Occupied"))
        await until(lambda: simulator.setpoint_a == 16.0)
        transaction_id = started(csms.received[CHARGER_ID])["transaction_info"]["transaction_id"]

        answer = await station.call(
            call.SetChargingProfile(
                evse_id=0, charging_profile=profile(1, 10.0, purpose="ChargingStationMaxProfile")
            )
        )
        assert answer.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 10.0)

        without = await station.call(
            call.SetChargingProfile(
                evse_id=1, charging_profile=profile(2, 8.0, purpose="TxProfile")
            )
        )
        assert without.status == "Rejected"
        assert without.status_info["reason_code"] == "InvalidValue"
        malformed = await station.call(
            call.SetChargingProfile(
                evse_id=1,
                charging_profile={**profile(3, 8.0), "chargingProfileKind": "Recurring"},
            )
        )
        assert malformed.status == "Rejected"
        assert malformed.status_info["reason_code"] == "InvalidProfile"
        assert "recurrencyKind" in malformed.status_info["additional_info"]
        tx = await station.call(
            call.SetChargingProfile(
                evse_id=1,
                charging_profile=profile(4, 8.0, purpose="TxProfile", transactionId=transaction_id),
            )
        )
        assert tx.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 8.0)

        composite = await station.call(call.GetCompositeSchedule(duration=300, evse_id=1))
        assert composite.status == "Accepted"
        assert composite.schedule["evse_id"] == 1
        assert composite.schedule["charging_schedule_period"] == [
            {"start_period": 0, "limit": 8.0, "number_phases": 3}
        ]
        unknown_evse = await station.call(call.GetCompositeSchedule(duration=300, evse_id=2))
        assert unknown_evse.status == "Rejected"

        report = await station.call(
            call.GetChargingProfiles(
                request_id=5, charging_profile={"chargingLimitSource": ["CSO"]}
            )
        )
        assert report.status == "Accepted"
        reports = await csms.wait_for_action(CHARGER_ID, "ReportChargingProfiles", count=2)
        assert [(r.payload["evse_id"], r.payload.get("tbc")) for r in reports] == [
            (0, True),
            (1, None),
        ]
        assert all(r.payload["request_id"] == 5 for r in reports)
        assert reports[1].payload["charging_profile"][0]["id"] == 4
        assert reports[1].payload["charging_profile"][0]["transaction_id"] == transaction_id
        nothing = await station.call(
            call.GetChargingProfiles(request_id=6, charging_profile={"stackLevel": 9})
        )
        assert nothing.status == "NoProfiles"

        cleared = await station.call(
            call.ClearChargingProfile(
                charging_profile_criteria={"chargingProfilePurpose": "TxProfile"}
            )
        )
        assert cleared.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 10.0)
        again = await station.call(call.ClearChargingProfile(charging_profile_id=4))
        assert again.status == "Unknown"


async def test_a_request_start_applies_its_tx_profile(
    csms: SmartChargingCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, [simulator], tmp_path / "evgw.sqlite3") as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        answer = await csms.stations[CHARGER_ID].call(
            call.RequestStartTransaction(
                id_token={"idToken": "APP-1", "type": "Central"},
                remote_start_id=77,
                evse_id=1,
                charging_profile=profile(9, 7.0, purpose="TxProfile"),
            )
        )
        assert answer.status == "Accepted"
        simulator.plug_in(energy_needed_wh=80_000)
        await until(lambda: simulator.setpoint_a == 7.0)
        smart = gateway.stations_201[CHARGER_ID].smart_charging
        (entry,) = list(smart.profiles)
        assert entry.profile.id == 9
        assert (
            entry.session_id
            == started(csms.received[CHARGER_ID])["transaction_info"]["transaction_id"]
        )


async def test_reservations_group_tokens_expiry_and_status_updates(
    csms: SmartChargingCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms.id_token_infos["FRIEND"] = {
        "status": "Accepted",
        "groupIdToken": {"idToken": "GROUP-B", "type": "Central"},
    }
    async with running_gateway(csms, [simulator], tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        station = csms.stations[CHARGER_ID]
        expires = now().replace(microsecond=0) + timedelta(seconds=3)
        answer = await station.call(
            call.ReserveNow(
                id=7,
                expiry_date_time=iso(expires),
                id_token={"idToken": "OWNER", "type": "ISO14443"},
                evse_id=1,
            )
        )
        assert answer.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Reserved"))
        (update,) = await csms.wait_for_action(CHARGER_ID, "ReservationStatusUpdate")
        assert update.payload == {"reservation_id": 7, "reservation_update_status": "Expired"}
        assert now() >= expires
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))

        # No evseId: the charger's one EVSE. A group member starts; the event carries the id.
        answer = await station.call(
            call.ReserveNow(
                id=8,
                expiry_date_time=iso(now() + timedelta(minutes=10)),
                id_token={"idToken": "OWNER", "type": "ISO14443"},
                group_id_token={"idToken": "GROUP-B", "type": "Central"},
            )
        )
        assert answer.status == "Accepted"
        refused = await station.call(
            call.RequestStartTransaction(
                id_token={"idToken": "STRANGER", "type": "Central"}, remote_start_id=1
            )
        )
        assert refused.status == "Rejected"
        simulator.plug_in(rfid="FRIEND", energy_needed_wh=80_000)
        await csms.wait_for(
            CHARGER_ID,
            lambda got: any(
                m.action == "TransactionEvent" and m.payload["event_type"] == "Started" for m in got
            ),
        )
        event = started(csms.received[CHARGER_ID])
        assert event["reservation_id"] == 8
        assert event["id_token"]["id_token"] == "FRIEND"
        simulator.unplug()
        await csms.wait_for(CHARGER_ID, has_status("Available", count=3))
        used = await station.call(call.CancelReservation(reservation_id=8))
        assert used.status == "Rejected"

        answer = await station.call(
            call.ReserveNow(
                id=9,
                expiry_date_time=iso(now() + timedelta(minutes=10)),
                id_token={"idToken": "OWNER", "type": "ISO14443"},
            )
        )
        assert answer.status == "Accepted"
        cancelled = await station.call(call.CancelReservation(reservation_id=9))
        assert cancelled.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Available", count=4))
    # Used and cancelled reservations are not reported: the CSMS knows of them.
    updates = [m for m in csms.received[CHARGER_ID] if m.action == "ReservationStatusUpdate"]
    assert len(updates) == 1


async def test_the_local_balancer_limiting_below_the_profile_is_notified_as_ems(
    csms: SmartChargingCsms, tmp_path: Path
) -> None:
    simulators = [SimulatedCharger("generic", speed=10.0) for _ in range(2)]
    for sim in simulators:
        await sim.start("127.0.0.1", 0)
    try:
        async with running_gateway(csms, simulators, tmp_path / "evgw.sqlite3", fuse_a=20.0):
            await csms.wait_for(CHARGER_ID, has_status("Available"))
            for index, sim in enumerate(simulators):
                sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=80_000)
            await until(lambda: all(sim.setpoint_a == 10.0 for sim in simulators))
            # No profile: nothing of the CSMS's is undercut, nothing is reported.
            assert not any(m.action == "NotifyChargingLimit" for m in csms.received[CHARGER_ID])
            answer = await csms.stations[CHARGER_ID].call(
                call.SetChargingProfile(evse_id=1, charging_profile=profile(1, 16.0))
            )
            assert answer.status == "Accepted"
            (notify,) = await csms.wait_for_action(CHARGER_ID, "NotifyChargingLimit")
            assert notify.payload["charging_limit"]["charging_limit_source"] == "EMS"
            assert notify.payload["evse_id"] == 1
            schedule = notify.payload["charging_schedule"][0]
            assert schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 10.0}]
            # The other vehicle leaves: the balancer no longer limits below the profile.
            simulators[1].unplug()
            await until(lambda: simulators[0].setpoint_a == 16.0)
            (cleared,) = await csms.wait_for_action(CHARGER_ID, "ClearedChargingLimit")
            assert cleared.payload == {"charging_limit_source": "EMS", "evse_id": 1}
    finally:
        for sim in simulators:
            await sim.stop()
