"""OCPP 1.6 Smart Charging and Reservation end to end: a simulated Modbus charger (a real
pymodbus server) → the gateway as `evgw run` wires it (real SQLite store) → a central system
built on the `ocpp` package, over a real WebSocket on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call

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
from gateway.store import Store
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, OcppPackageCsms, Received

CHARGER_ID = "SC-16"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


def statuses(received: list[Received], connector_id: int = 1) -> list[str]:
    return [
        m.payload["status"]
        for m in received
        if m.action == "StatusNotification" and m.payload["connector_id"] == connector_id
    ]


def has_status(status: str, count: int = 1) -> Callable[[list[Received]], bool]:
    return lambda got: statuses(got).count(status) >= count


async def until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        # The simulator's registers offer no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def profile(
    profile_id: int,
    periods: list[tuple[int, float]],
    *,
    stack_level: int = 0,
    purpose: str = "TxDefaultProfile",
    start: datetime | None = None,
    duration: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": limit} for s, limit in periods],
        "startSchedule": iso(start or now() - timedelta(minutes=1)),
    }
    if duration is not None:
        schedule["duration"] = duration
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": schedule,
        **extra,
    }


@contextlib.asynccontextmanager
async def running_gateway(
    csms: OcppPackageCsms,
    simulators: list[SimulatedCharger],
    store: Path,
    *,
    fuse_a: float | None = None,
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
        upstream=UpstreamSection(url=csms.url, heartbeat_interval_s=300),
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


async def test_profiles_drive_the_setpoint_over_time_stack_levels_and_clearing(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store = tmp_path / "evgw.sqlite3"
    async with running_gateway(csms, [simulator], store):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        simulator.plug_in(rfid="TAG-1", energy_needed_wh=80_000)
        await csms.wait_for(CHARGER_ID, has_status("Charging"))
        await until(lambda: simulator.setpoint_a == 16.0)

        # A station-wide default at 10 A.
        answer = await charge_point.call(
            call.SetChargingProfile(connector_id=0, cs_charging_profiles=profile(1, [(0, 10.0)]))
        )
        assert answer.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 10.0)

        # A higher stack level for a short while, with two periods: 8 A, then 12 A, then the
        # default again when its duration ends.
        start = now().replace(microsecond=0) + timedelta(seconds=1)
        answer = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1,
                cs_charging_profiles=profile(
                    2, [(0, 8.0), (3, 12.0)], stack_level=1, start=start, duration=6
                ),
            )
        )
        assert answer.status == "Accepted"
        composite = await charge_point.call(
            call.GetCompositeSchedule(connector_id=1, duration=60, charging_rate_unit="A")
        )
        assert composite.status == "Accepted"
        schedule = composite.charging_schedule
        scheduled_start = datetime.fromisoformat(composite.schedule_start.replace("Z", "+00:00"))
        got = [
            (scheduled_start + timedelta(seconds=p["start_period"]), p["limit"])
            for p in schedule["charging_schedule_period"]
        ]
        expected = [
            (start, 8.0),
            (start + timedelta(seconds=3), 12.0),
            (start + timedelta(seconds=6), 10.0),
        ]
        assert got[-3:] == expected
        if len(got) == 4:
            assert got[0] == (scheduled_start, 10.0)  # asked before the short profile began
        assert schedule["charging_rate_unit"] == "A"

        await until(lambda: simulator.setpoint_a == 8.0)
        await until(lambda: simulator.setpoint_a == 12.0)
        await until(lambda: simulator.setpoint_a == 10.0)
        assert now() >= start + timedelta(seconds=6)

        # Below the pilot minimum: the session pauses (0 A), and resumes when it is cleared.
        answer = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1, cs_charging_profiles=profile(3, [(0, 4.0)], stack_level=3)
            )
        )
        assert answer.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 0.0)
        cleared = await charge_point.call(call.ClearChargingProfile(id=3))
        assert cleared.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 10.0)
        unknown = await charge_point.call(call.ClearChargingProfile(id=3))
        assert unknown.status == "Unknown"

        # A TxProfile needs the active transaction; a ChargePointMaxProfile connector 0.
        start_tx = (await csms.wait_for_action(CHARGER_ID, "StartTransaction"))[0].payload
        wrong = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1,
                cs_charging_profiles=profile(
                    4, [(0, 9.0)], purpose="TxProfile", transactionId=start_tx["transaction_id"] + 1
                ),
            )
        )
        assert wrong.status == "Rejected"
        misplaced = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1,
                cs_charging_profiles=profile(5, [(0, 9.0)], purpose="ChargePointMaxProfile"),
            )
        )
        assert misplaced.status == "Rejected"
        malformed = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1, cs_charging_profiles=profile(6, [(5, 9.0)], stack_level=4)
            )
        )
        assert malformed.status == "Rejected"
        tx_profile = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1,
                cs_charging_profiles=profile(
                    7, [(0, 14.0)], purpose="TxProfile", transactionId=start_tx["transaction_id"]
                ),
            )
        )
        assert tx_profile.status == "Accepted"
        await until(lambda: simulator.setpoint_a == 14.0)  # the TxProfile overrides the default

    # Across a restart on the same store: the profiles are still installed and applied.
    async with running_gateway(csms, [simulator], store) as gateway:
        await until(lambda: simulator.setpoint_a == 14.0)
        smart = gateway.stations[CHARGER_ID].smart_charging
        # Profile 2 stays installed after its schedule ended (only a TxProfile goes by itself).
        assert sorted(e.profile.id for e in smart.profiles) == [1, 2, 7]
        simulator.unplug()
        # The transaction ended: its TxProfile is gone, the others remain.
        await until(lambda: sorted(e.profile.id for e in smart.profiles) == [1, 2])
        charge_point = csms.charge_points[CHARGER_ID]
        composite = await charge_point.call(call.GetCompositeSchedule(connector_id=0, duration=10))
        assert composite.charging_schedule["charging_schedule_period"] == [
            {"start_period": 0, "limit": 10.0, "number_phases": 3}
        ]
        watts = await charge_point.call(
            call.GetCompositeSchedule(connector_id=1, duration=10, charging_rate_unit="W")
        )
        assert (
            watts.charging_schedule["charging_schedule_period"][0]["limit"] == 6900.0
        )  # 10 A x 230 V x 3
        rejected = await charge_point.call(call.GetCompositeSchedule(connector_id=2, duration=10))
        assert rejected.status == "Rejected"
        cleared = await charge_point.call(call.ClearChargingProfile())
        assert cleared.status == "Accepted"


async def test_a_remote_start_applies_its_tx_profile(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, [simulator], tmp_path / "evgw.sqlite3") as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        no_tx = await charge_point.call(
            call.SetChargingProfile(
                connector_id=1, cs_charging_profiles=profile(1, [(0, 9.0)], purpose="TxProfile")
            )
        )
        assert no_tx.status == "Rejected"  # no transaction yet
        not_tx = await charge_point.call(
            call.RemoteStartTransaction(
                id_tag="APP-1", connector_id=1, charging_profile=profile(2, [(0, 9.0)])
            )
        )
        assert not_tx.status == "Rejected"  # a remote start's profile must be a TxProfile
        answer = await charge_point.call(
            call.RemoteStartTransaction(
                id_tag="APP-1",
                connector_id=1,
                charging_profile=profile(3, [(0, 7.0)], purpose="TxProfile"),
            )
        )
        assert answer.status == "Accepted"
        simulator.plug_in(energy_needed_wh=80_000)
        await csms.wait_for_action(CHARGER_ID, "StartTransaction")
        await until(lambda: simulator.setpoint_a == 7.0)
        smart = gateway.stations[CHARGER_ID].smart_charging
        assert [e.profile.id for e in smart.profiles] == [3]
        simulator.unplug()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        await until(lambda: len(smart.profiles) == 0)


async def test_with_load_balancing_the_profile_is_a_cap_and_the_others_get_the_rest(
    csms: OcppPackageCsms, tmp_path: Path
) -> None:
    simulators = [SimulatedCharger("generic", speed=10.0) for _ in range(2)]
    for sim in simulators:
        await sim.start("127.0.0.1", 0)
    try:
        async with running_gateway(csms, simulators, tmp_path / "evgw.sqlite3", fuse_a=20.0) as gw:
            await csms.wait_for(CHARGER_ID, has_status("Available"))
            for index, sim in enumerate(simulators):
                sim.plug_in(rfid=f"TAG-{index}", energy_needed_wh=80_000)
            await until(lambda: all(sim.setpoint_a == 10.0 for sim in simulators))
            answer = await csms.charge_points[CHARGER_ID].call(
                call.SetChargingProfile(
                    connector_id=0,
                    cs_charging_profiles=profile(1, [(0, 7.0)], purpose="ChargePointMaxProfile"),
                )
            )
            assert answer.status == "Accepted"
            await until(lambda: simulators[0].setpoint_a == 7.0)
            await until(lambda: simulators[1].setpoint_a == 13.0)  # what the cap freed
            assert gw.balancing is not None
            assert gw.balancing.charger_caps(CHARGER_ID) == {"ocpp": 7.0}
            assert "cap" in gw.balancing.status(CHARGER_ID).reason
            cleared = await csms.charge_points[CHARGER_ID].call(call.ClearChargingProfile(id=1))
            assert cleared.status == "Accepted"
            await until(lambda: all(sim.setpoint_a == 10.0 for sim in simulators))
            assert gw.balancing.charger_caps(CHARGER_ID) == {}
    finally:
        for sim in simulators:
            await sim.stop()


async def test_reservations_admit_only_their_identifier_or_group_and_expire_on_time(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store = tmp_path / "evgw.sqlite3"
    csms.id_tag_infos["FRIEND"] = {"status": "Accepted", "parent_id_tag": "GROUP-A"}
    async with running_gateway(csms, [simulator], store):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        answer = await charge_point.call(
            call.ReserveNow(
                connector_id=1,
                expiry_date=iso(now() + timedelta(minutes=10)),
                id_tag="OWNER",
                parent_id_tag="GROUP-A",
                reservation_id=41,
            )
        )
        assert answer.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Reserved"))
        busy = await charge_point.call(
            call.ReserveNow(
                connector_id=1,
                expiry_date=iso(now() + timedelta(minutes=5)),
                id_tag="X",
                reservation_id=42,
            )
        )
        assert busy.status == "Occupied"  # held by reservation 41
        refused = await charge_point.call(
            call.RemoteStartTransaction(id_tag="STRANGER", connector_id=1)
        )
        assert refused.status == "Rejected"

        # A stranger's card is accepted by the central system but refused at the charger.
        simulator.plug_in(rfid="STRANGER", energy_needed_wh=80_000)
        await csms.wait_for_action(CHARGER_ID, "Authorize")
        await csms.wait_for(CHARGER_ID, has_status("Preparing"))
        simulator.unplug()
        await csms.wait_for(CHARGER_ID, has_status("Reserved", count=2))
        assert not any(m.action == "StartTransaction" for m in csms.received[CHARGER_ID])

        # A card of the same group (its parent learned from the Authorize answer) starts, and
        # the transaction carries the reservation.
        simulator.plug_in(rfid="FRIEND", energy_needed_wh=80_000)
        start = (await csms.wait_for_action(CHARGER_ID, "StartTransaction"))[0].payload
        assert start["id_tag"] == "FRIEND"
        assert start["reservation_id"] == 41
        simulator.unplug()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
        gone = await charge_point.call(call.CancelReservation(reservation_id=41))
        assert gone.status == "Rejected"  # used up

        # Cancelled: Available again.
        answer = await charge_point.call(
            call.ReserveNow(
                connector_id=0,
                expiry_date=iso(now() + timedelta(minutes=10)),
                id_tag="OWNER",
                reservation_id=43,
            )
        )
        assert answer.status == "Accepted"  # connector 0: the charger's one connector
        await csms.wait_for(CHARGER_ID, has_status("Reserved", count=3))
        cancelled = await charge_point.call(call.CancelReservation(reservation_id=43))
        assert cancelled.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Available", count=3))
        past = await charge_point.call(
            call.ReserveNow(
                connector_id=1,
                expiry_date=iso(now() - timedelta(minutes=1)),
                id_tag="OWNER",
                reservation_id=44,
            )
        )
        assert past.status == "Rejected"

        # Expiry across a restart: reserved now, expiring while the gateway is running again.
        expires = now().replace(microsecond=0) + timedelta(seconds=8)
        answer = await charge_point.call(
            call.ReserveNow(
                connector_id=1, expiry_date=iso(expires), id_tag="OWNER", reservation_id=45
            )
        )
        assert answer.status == "Accepted"
        await csms.wait_for(CHARGER_ID, has_status("Reserved", count=4))

    stored = await Store.open(store)
    try:
        assert [r.reservation_id for r in await stored.reservations()] == [45]
    finally:
        await stored.close()
    async with running_gateway(csms, [simulator], store) as gateway:
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=4))
        assert gateway.site.reservation(CHARGER_ID) is None
    # Reported Reserved again after the restart (it takes far less than the 8 s left), then
    # Available at the expiry.
    assert statuses(received)[-2:] == ["Reserved", "Available"]
    available = [
        m.payload
        for m in received
        if m.action == "StatusNotification" and m.payload["connector_id"] == 1
    ][-1]
    assert available["status"] == "Available"
    at = datetime.fromisoformat(available["timestamp"].replace("Z", "+00:00"))
    assert at >= expires  # never before its expiry


async def test_a_reservation_refuses_a_busy_or_faulted_connector(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with running_gateway(csms, [simulator], tmp_path / "evgw.sqlite3"):
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        expiry = iso(now() + timedelta(minutes=10))
        simulator.plug_in(energy_needed_wh=80_000)
        await csms.wait_for(CHARGER_ID, has_status("Preparing"))
        occupied = await charge_point.call(
            call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="A", reservation_id=1)
        )
        assert occupied.status == "Occupied"
        simulator.unplug()
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
        simulator.inject_fault(3)
        await csms.wait_for(CHARGER_ID, has_status("Faulted"))
        faulted = await charge_point.call(
            call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="A", reservation_id=2)
        )
        assert faulted.status == "Faulted"
        simulator.clear_fault()
        await csms.wait_for(CHARGER_ID, has_status("Available", count=3))
        unknown = await charge_point.call(
            call.ReserveNow(connector_id=2, expiry_date=expiry, id_tag="A", reservation_id=3)
        )
        assert unknown.status == "Rejected"
        accepted = await charge_point.call(
            call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="A", reservation_id=4)
        )
        assert accepted.status == "Accepted"
        # A fault ends the reservation: Faulted, then Available (not Reserved) once cleared.
        simulator.inject_fault(3)
        await csms.wait_for(CHARGER_ID, has_status("Faulted", count=2))
        simulator.clear_fault()
        received = await csms.wait_for(CHARGER_ID, has_status("Available", count=4))
    assert statuses(received)[-3:] == ["Reserved", "Faulted", "Available"]
