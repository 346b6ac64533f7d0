"""Topology "one station with many EVSEs": two simulated Modbus chargers (real pymodbus
servers) → the gateway as `evgw run` wires it with an [[upstream.stations]] group → central
systems built on the `ocpp` package (1.6 and 2.0.1) over a real WebSocket on loopback, with
the real SQLite store, including the uplink cut and a gateway restart on the same store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from gateway.config import (
    ChargerSection,
    ConfigError,
    GatewayConfig,
    GatewaySection,
    SharedStationSection,
    UpstreamSection,
    parse_config,
)
from gateway.modbus import SimulatedCharger
from gateway.ocpp.shared_station import SharedStation
from gateway.ocpp.v201.device_model import TX_UPDATED_INTERVAL
from gateway.runtime import Gateway
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, OcppPackageCsms, Received
from tests.ocpp.central_system_ocpp201 import Csms201
from tests.ocpp.conftest import SPEED
from tests.ocpp.test_smart_charging201 import SmartChargingCsms

GROUP = "DEPOT 1/ä"  # needs percent-encoding in the URL
RAW_GROUP = quote(GROUP, safe="")
"""The identity as `SmartChargingCsms` keys it (from the URL path, not decoded)."""
CHARGERS = ("CP-A", "CP-B")
"""Connector/EVSE 1 and 2 of the group, in this order."""
TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


@pytest.fixture
async def chargers() -> AsyncIterator[tuple[SimulatedCharger, SimulatedCharger]]:
    first, second = (
        SimulatedCharger("generic", speed=SPEED),
        SimulatedCharger("generic", speed=SPEED),
    )
    await first.start("127.0.0.1", 0)
    await second.start("127.0.0.1", 0)
    yield first, second
    await first.stop()
    await second.stop()


@pytest.fixture
async def csms201() -> AsyncIterator[Csms201]:
    central_system = Csms201()
    await central_system.start()
    yield central_system
    await central_system.stop()


@contextlib.asynccontextmanager
async def group_gateway(
    url: str, chargers: tuple[SimulatedCharger, ...], store: Path, *, version: str = "1.6"
) -> AsyncIterator[Gateway]:
    """The gateway with CP-A and CP-B as one station, short back-off and replay pace."""
    config = GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(
            url=url,
            ocpp_version=version,
            meter_value_sample_interval_s=1,
            stations=(SharedStationSection(GROUP, CHARGERS, serial_number="DEPOT-0001"),),
        ),
        chargers=tuple(
            ChargerSection(
                id=charger_id,
                host="127.0.0.1",
                port=simulator.port or 0,
                poll_interval_s=0.2,
                vendor="ACME",
                model="Sim 11",
                serial_number=f"SN-{charger_id}",
            )
            for charger_id, simulator in zip(CHARGERS, chargers, strict=True)
        ),
    )
    gateway = await Gateway.open(config)
    for station in shared(gateway).members:
        station.backoff.minimum_s = 0.1
        station.backoff.random_range_s = 0.1
        station.backoff.repeat_times = 1
        station.pacer.interval_s = 0.02
    task = asyncio.create_task(gateway.run())
    try:
        yield gateway
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gateway.close()


def shared(gateway: Gateway) -> SharedStation:
    return gateway.shared_stations[GROUP]


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        # Polled: the gateway's queues and connection offer no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def statuses16(received: list[Received], connector_id: int) -> list[str]:
    return [
        m.payload["status"]
        for m in received
        if m.action == "StatusNotification" and m.payload["connector_id"] == connector_id
    ]


def has_status16(
    status: str, connector_id: int, count: int = 1
) -> Callable[[list[Received]], bool]:
    return lambda got: statuses16(got, connector_id).count(status) >= count


def by_connector(received: list[Received], connector_id: int) -> list[Received]:
    """The transaction messages of one connector (Stop by its Start's transactionId)."""
    messages = [m for m in received if m.action in TRANSACTION_ACTIONS]
    ids = {
        m.payload["transaction_id"]
        for m in messages
        if m.action == "StartTransaction" and m.payload["connector_id"] == connector_id
    }
    return [
        m
        for m in messages
        if m.payload.get("connector_id") == connector_id
        or (m.action == "StopTransaction" and m.payload["transaction_id"] in ids)
    ]


def message_time(message: Received) -> datetime:
    if message.action == "MeterValues":
        text = message.payload["meter_value"][0]["timestamp"]
    else:
        text = message.payload["timestamp"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_one_boot_statuses_per_connector_and_two_concurrent_transactions_16(
    csms: OcppPackageCsms,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    first, second = chargers
    async with group_gateway(csms.url, chargers, tmp_path / "evgw.sqlite3") as gateway:
        for connector_id in (0, 1, 2):
            await csms.wait_for(GROUP, has_status16("Available", connector_id))
        first.plug_in(rfid="TAG-A", energy_needed_wh=50_000)
        second.plug_in(rfid="TAG-B", energy_needed_wh=50_000)
        await csms.wait_for_action(GROUP, "StartTransaction", count=2)
        await csms.wait_for(
            GROUP,
            lambda got: (
                {1, 2} <= {m.payload["connector_id"] for m in got if m.action == "MeterValues"}
            ),
        )
        first.unplug()
        second.unplug()
        await csms.wait_for_action(GROUP, "StopTransaction", count=2)
        assert shared(gateway).boots_sent == 1
        received = csms.received[GROUP]

    # One identity upstream: no charger has a socket of its own.
    assert set(csms.received) == {GROUP}
    (boot,) = [m for m in received if m.action == "BootNotification"]
    assert boot.payload["charge_point_serial_number"] == "DEPOT-0001"
    assert boot.payload["charge_point_vendor"] == "ACME"
    assert {m.payload["connector_id"] for m in received if m.action == "StatusNotification"} == {
        0,
        1,
        2,
    }
    starts = {
        m.payload["connector_id"]: m.payload for m in received if m.action == "StartTransaction"
    }
    assert starts[1]["id_tag"] == "TAG-A"
    assert starts[2]["id_tag"] == "TAG-B"
    assert starts[1]["transaction_id"] != starts[2]["transaction_id"]
    for connector_id in (1, 2):
        messages = by_connector(received, connector_id)
        assert messages[0].action == "StartTransaction"
        assert messages[-1].action == "StopTransaction"
        transaction_id = starts[connector_id]["transaction_id"]
        assert all(m.payload["transaction_id"] == transaction_id for m in messages[1:])
    # Both chargers charged at once: the second Start came before the first Stop.
    order = [m.action for m in received if m.action in ("StartTransaction", "StopTransaction")]
    assert order[:2] == ["StartTransaction", "StartTransaction"]


async def test_remote_start_on_connector_2_and_station_wide_configuration_16(
    csms: OcppPackageCsms,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    first, second = chargers
    async with group_gateway(csms.url, chargers, tmp_path / "evgw.sqlite3") as gateway:
        await csms.wait_for(GROUP, has_status16("Available", 2))
        charge_point = csms.charge_points[GROUP]

        changed = await charge_point.call(
            call16.ChangeConfiguration(key="MeterValueSampleInterval", value="7")
        )
        assert changed.status == "Accepted"
        members = gateway.stations
        assert [members[c].configuration.meter_value_sample_interval_s for c in CHARGERS] == [7, 7]
        got = await charge_point.call(call16.GetConfiguration(key=["MeterValueSampleInterval"]))
        assert got.configuration_key[0]["value"] == "7"
        intervals = [members[c].configuration.heartbeat_interval_s for c in CHARGERS]
        refused = await charge_point.call(
            call16.ChangeConfiguration(key="HeartbeatInterval", value="soon")
        )
        assert refused.status == "Rejected"
        assert [members[c].configuration.heartbeat_interval_s for c in CHARGERS] == intervals

        nowhere = await charge_point.call(
            call16.RemoteStartTransaction(id_tag="APP-1", connector_id=3)
        )
        assert nowhere.status == "Rejected"
        answer = await charge_point.call(
            call16.RemoteStartTransaction(id_tag="APP-1", connector_id=2)
        )
        assert answer.status == "Accepted"
        await csms.wait_for(GROUP, has_status16("Preparing", 2))
        second.plug_in(rfid=None, energy_needed_wh=50_000)
        (start,) = await csms.wait_for_action(GROUP, "StartTransaction")
        assert start.payload["connector_id"] == 2
        assert start.payload["id_tag"] == "APP-1"
        assert gateway.site.connector(CHARGERS[1]).session is not None
        assert gateway.site.connector(CHARGERS[0]).session is None
        assert "Preparing" not in statuses16(csms.received[GROUP], 1)

        # RemoteStop names only the transaction: the group finds its charger (once the
        # StartTransaction's answer is in).
        await wait_until(lambda: len(members[CHARGERS[1]].outbox) == 0)
        stopped = await charge_point.call(
            call16.RemoteStopTransaction(transaction_id=start.payload["transaction_id"])
        )
        assert stopped.status == "Accepted"
        (stop,) = await csms.wait_for_action(GROUP, "StopTransaction")
        assert stop.payload["reason"] == "Remote"
        unknown = await charge_point.call(call16.RemoteStopTransaction(transaction_id=999_999))
        assert unknown.status == "Rejected"

        # The local list is the station's: every charger gets it, one version answers.
        sent = await charge_point.call(
            call16.SendLocalList(
                list_version=3,
                update_type="Full",
                local_authorization_list=[
                    {"id_tag": "LIST-1", "id_tag_info": {"status": "Accepted"}}
                ],
            )
        )
        assert sent.status == "Accepted"
        assert [members[c].local_list.reported_version for c in CHARGERS] == [3, 3]
        version = await charge_point.call(call16.GetLocalListVersion())
        assert version.list_version == 3
    first.unplug()


async def test_the_uplink_cut_and_a_restart_replay_every_member_s_queue_in_order_16(
    csms: OcppPackageCsms,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    first, second = chargers
    store = tmp_path / "evgw.sqlite3"
    async with group_gateway(csms.url, chargers, store) as gateway:
        await csms.wait_for(GROUP, has_status16("Available", 2))
        allowed = await csms.charge_points[GROUP].call(
            call16.ChangeConfiguration(key="AllowOfflineTxForUnknownId", value="true")
        )
        assert allowed.status == "Accepted"
        await csms.stop()
        await wait_until(lambda: not shared(gateway).connection.connected)
        first.plug_in(rfid="TAG-A", energy_needed_wh=50_000)
        second.plug_in(rfid="TAG-B", energy_needed_wh=50_000)
        outboxes = [gateway.stations[c].outbox for c in CHARGERS]
        await wait_until(
            lambda: all([m.action for m in o.messages].count("MeterValues") >= 2 for o in outboxes)
        )
        first_run = [list(o.messages) for o in outboxes]

    # The gateway stopped mid-session with the uplink still down; each member's queue is
    # durable under its own charger id.
    async with group_gateway(csms.url, chargers, store) as gateway:
        members = [gateway.stations[c] for c in CHARGERS]
        for member, queued in zip(members, first_run, strict=True):
            await member.wait_loaded()
            assert member.outbox.messages[: len(queued)] == queued
        first.unplug()
        second.unplug()
        await wait_until(
            lambda: all("StopTransaction" in [m.action for m in s.outbox.messages] for s in members)
        )
        await csms.start()
        await csms.wait_for_action(GROUP, "StopTransaction", count=2)
        await wait_until(lambda: all(len(s.outbox) == 0 for s in members))
        received = csms.received[GROUP]

    for connector_id, (tag, queued) in enumerate(
        zip(("TAG-A", "TAG-B"), first_run, strict=True), start=1
    ):
        messages = by_connector(received, connector_id)
        assert messages[0].action == "StartTransaction"
        assert messages[0].payload["id_tag"] == tag
        assert [m.action for m in messages].count("StopTransaction") == 1
        assert messages[-1].action == "StopTransaction"
        times = [message_time(m) for m in messages]
        assert times == sorted(times)  # each member's messages in their order
        # Nothing of the first run was lost, and its messages went first.
        assert [m.action for m in messages[: len(queued)]] == [m.action for m in queued]
        transaction_id = messages[0].payload["transaction_id"]
        assert all(m.payload["transaction_id"] == transaction_id for m in messages)


def tx_default(profile_id: int, limit: float, purpose: str = "TxDefaultProfile") -> dict[str, Any]:
    return {
        "chargingProfileId": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            "startSchedule": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        },
    }


async def test_station_wide_calls_get_one_answer_per_the_spec_16(
    csms: OcppPackageCsms,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    async with group_gateway(csms.url, chargers, tmp_path / "evgw.sqlite3") as gateway:
        await csms.wait_for(GROUP, has_status16("Available", 2))
        charge_point = csms.charge_points[GROUP]
        site = gateway.site

        # TriggerMessage without a connector: every connector reports again, 0 included.
        triggered = await charge_point.call(
            call16.TriggerMessage(requested_message="StatusNotification")
        )
        assert triggered.status == "Accepted"
        for connector_id in (0, 1, 2):
            await csms.wait_for(GROUP, has_status16("Available", connector_id, count=2))

        # Connector 0 reservations go to the first free charger; an id names one reservation.
        expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        for reservation_id, connector_id in ((11, 1), (12, 2)):
            reserved = await charge_point.call(
                call16.ReserveNow(
                    connector_id=0, expiry_date=expiry, id_tag="R", reservation_id=reservation_id
                )
            )
            assert reserved.status == "Accepted"
            await csms.wait_for(GROUP, has_status16("Reserved", connector_id))
        cancelled = await charge_point.call(call16.CancelReservation(reservation_id=12))
        assert cancelled.status == "Accepted"
        moved = await charge_point.call(
            call16.ReserveNow(connector_id=2, expiry_date=expiry, id_tag="R", reservation_id=11)
        )
        assert moved.status == "Accepted"
        await wait_until(lambda: site.connector(CHARGERS[0]).reservation is None)
        assert site.connector(CHARGERS[1]).reservation is not None
        unknown = await charge_point.call(call16.CancelReservation(reservation_id=99))
        assert unknown.status == "Rejected"

        # Smart charging: per connector as addressed; no single schedule for the group.
        maximum = await charge_point.call(
            call16.SetChargingProfile(
                connector_id=0, cs_charging_profiles=tx_default(1, 20.0, "ChargePointMaxProfile")
            )
        )
        assert maximum.status == "Rejected"
        installed = await charge_point.call(
            call16.SetChargingProfile(connector_id=2, cs_charging_profiles=tx_default(5, 10.0))
        )
        assert installed.status == "Accepted"
        composite = await charge_point.call(
            call16.GetCompositeSchedule(connector_id=2, duration=60, charging_rate_unit="A")
        )
        assert composite.status == "Accepted"
        assert composite.connector_id == 2
        assert composite.charging_schedule["charging_schedule_period"][0]["limit"] == 10.0
        whole = await charge_point.call(call16.GetCompositeSchedule(connector_id=0, duration=60))
        assert whole.status == "Rejected"
        cleared = await charge_point.call(call16.ClearChargingProfile(id=5))
        assert cleared.status == "Accepted"
        again = await charge_point.call(call16.ClearChargingProfile(id=5))
        assert again.status == "Unknown"

        # ChangeAvailability of connector 0: the whole station.
        off = await charge_point.call(call16.ChangeAvailability(connector_id=0, type="Inoperative"))
        assert off.status == "Accepted"
        for connector_id in (1, 2):
            await csms.wait_for(GROUP, has_status16("Unavailable", connector_id))
        missing = await charge_point.call(call16.UnlockConnector(connector_id=3))
        assert missing.status == "NotSupported"


def events201(received: list[Received]) -> list[dict[str, Any]]:
    return [m.payload for m in received if m.action == "TransactionEvent"]


def variable(component: str, name: str, evse: int | None = None) -> dict[str, Any]:
    named: dict[str, Any] = {"name": component}
    if evse is not None:
        named["evse"] = {"id": evse}
    return {"component": named, "variable": {"name": name}}


async def test_one_station_with_two_evses_201(
    csms201: Csms201,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    first, second = chargers
    csms201.boot_answers = [("Pending", 1), ("Accepted", 30)]
    async with group_gateway(
        csms201.url, chargers, tmp_path / "evgw.sqlite3", version="2.0.1"
    ) as gateway:
        await csms201.wait_for(
            GROUP,
            lambda got: (
                {1, 2} <= {m.payload["evse_id"] for m in got if m.action == "StatusNotification"}
            ),
        )
        station = csms201.stations[GROUP]

        result = await station.call(
            call201.SetVariables(
                set_variable_data=[
                    {**variable("SampledDataCtrlr", "TxUpdatedInterval"), "attribute_value": "5"},
                    {**variable("NoSuchCtrlr", "Nothing", evse=7), "attribute_value": "1"},
                ]
            )
        )
        assert [r["attribute_status"] for r in result.set_variable_result] == [
            "Accepted",
            "UnknownComponent",
        ]
        assert result.set_variable_result[1]["component"] == {
            "name": "NoSuchCtrlr",
            "evse": {"id": 7},
        }
        members = gateway.stations_201
        got = await station.call(
            call201.GetVariables(
                get_variable_data=[variable("SampledDataCtrlr", "TxUpdatedInterval")]
            )
        )
        assert got.get_variable_result[0]["attribute_value"] == "5"
        assert [members[c].device_model.integer(TX_UPDATED_INTERVAL) for c in CHARGERS] == [5, 5]

        answer = await station.call(
            call201.RequestStartTransaction(
                id_token={"id_token": "APP-2", "type": "Central"}, remote_start_id=9, evse_id=2
            )
        )
        assert answer.status == "Accepted"
        second.plug_in(rfid=None, energy_needed_wh=50_000)
        first.plug_in(rfid="TAG-A", energy_needed_wh=50_000)
        await csms201.wait_for(
            GROUP, lambda got: sum(e["event_type"] == "Started" for e in events201(got)) >= 2
        )
        assert gateway.site.connector(CHARGERS[1]).session is not None
        first.unplug()
        second.unplug()
        await csms201.wait_for(
            GROUP, lambda got: sum(e["event_type"] == "Ended" for e in events201(got)) >= 2
        )
        # Pending, then Accepted: one BootNotification per round for the whole group.
        assert shared(gateway).boots_sent == 2
        received = csms201.received[GROUP]

    assert set(csms201.received) == {GROUP}
    _, boot = [m for m in received if m.action == "BootNotification"]
    assert boot.payload["charging_station"]["serial_number"] == "DEPOT-0001"
    started = {e["evse"]["id"]: e for e in events201(received) if e["event_type"] == "Started"}
    assert set(started) == {1, 2}
    assert started[2]["trigger_reason"] == "RemoteStart"
    assert started[2]["transaction_info"]["remote_start_id"] == 9
    assert started[1]["id_token"]["id_token"] == "TAG-A"
    assert all(e["evse"]["connector_id"] == 1 for e in started.values())
    by_transaction: dict[str, list[int]] = {}
    for event in events201(received):
        by_transaction.setdefault(event["transaction_info"]["transaction_id"], []).append(
            event["seq_no"]
        )
    assert len(by_transaction) == 2
    assert all(numbers == sorted(numbers) for numbers in by_transaction.values())


async def test_the_uplink_cut_replays_both_evses_transactions_in_order_201(
    csms201: Csms201,
    chargers: tuple[SimulatedCharger, SimulatedCharger],
    tmp_path: Path,
) -> None:
    first, second = chargers
    async with group_gateway(
        csms201.url, chargers, tmp_path / "evgw.sqlite3", version="2.0.1"
    ) as gateway:
        await csms201.wait_for(
            GROUP,
            lambda got: (
                {1, 2} <= {m.payload["evse_id"] for m in got if m.action == "StatusNotification"}
            ),
        )
        allowed = await csms201.stations[GROUP].call(
            call201.SetVariables(
                set_variable_data=[
                    {
                        **variable("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
                        "attribute_value": "true",
                    }
                ]
            )
        )
        assert allowed.set_variable_result[0]["attribute_status"] == "Accepted"
        await csms201.stop()
        await wait_until(lambda: not shared(gateway).connection.connected)
        first.plug_in(rfid="TAG-A", energy_needed_wh=50_000)
        second.plug_in(rfid="TAG-B", energy_needed_wh=50_000)
        members = [gateway.stations_201[c] for c in CHARGERS]
        await wait_until(lambda: all(len(m.outbox) >= 3 for m in members))
        first.unplug()
        second.unplug()
        await wait_until(
            lambda: all(
                any(q.payload["eventType"] == "Ended" for q in m.outbox.messages) for m in members
            )
        )
        queued = [[q.payload["seqNo"] for q in m.outbox.messages] for m in members]
        await csms201.start()
        await csms201.wait_for(
            GROUP, lambda got: sum(e["event_type"] == "Ended" for e in events201(got)) >= 2
        )
        await wait_until(lambda: all(len(m.outbox) == 0 for m in members))
        received = csms201.received[GROUP]

    sent = events201(received)
    for evse_id, (tag, numbers) in enumerate(zip(("TAG-A", "TAG-B"), queued, strict=True), 1):
        started = next(
            e for e in sent if e["event_type"] == "Started" and e["evse"]["id"] == evse_id
        )
        transaction_id = started["transaction_info"]["transaction_id"]
        mine = [e for e in sent if e["transaction_info"]["transaction_id"] == transaction_id]
        assert started["id_token"]["id_token"] == tag
        assert [e["seq_no"] for e in mine] == numbers  # all of them, in order
        assert mine[-1]["event_type"] == "Ended"
        assert all(e["offline"] for e in mine)
        assert all(e.get("evse", {"id": evse_id})["id"] == evse_id for e in mine)


def profile201(profile_id: int, limit: float, purpose: str = "TxDefaultProfile") -> dict[str, Any]:
    return {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": profile_id,
                "startSchedule": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            }
        ],
    }


async def test_profiles_per_evse_and_one_report_for_the_station_201(
    chargers: tuple[SimulatedCharger, SimulatedCharger], tmp_path: Path
) -> None:
    csms = SmartChargingCsms()
    await csms.start()
    try:
        async with group_gateway(
            csms.url, chargers, tmp_path / "evgw.sqlite3", version="2.0.1"
        ) as gateway:
            await csms.wait_for(
                RAW_GROUP,
                lambda got: (
                    {1, 2}
                    <= {m.payload["evse_id"] for m in got if m.action == "StatusNotification"}
                ),
            )
            station = csms.stations[RAW_GROUP]
            for evse_id, profile_id, limit in ((1, 21, 10.0), (2, 22, 8.0)):
                answer = await station.call(
                    call201.SetChargingProfile(
                        evse_id=evse_id, charging_profile=profile201(profile_id, limit)
                    )
                )
                assert answer.status == "Accepted"
            members = gateway.stations_201
            assert [
                [e.profile.id for e in members[c].smart_charging.profiles] for c in CHARGERS
            ] == [
                [21],
                [22],
            ]
            nowhere = await station.call(
                call201.SetChargingProfile(evse_id=3, charging_profile=profile201(23, 6.0))
            )
            assert nowhere.status == "Rejected"
            maximum = await station.call(
                call201.SetChargingProfile(
                    evse_id=0, charging_profile=profile201(24, 32.0, "ChargingStationMaxProfile")
                )
            )
            assert maximum.status == "Rejected"
            composite = await station.call(call201.GetCompositeSchedule(duration=60, evse_id=2))
            assert composite.status == "Accepted"
            assert composite.schedule["evse_id"] == 2
            assert composite.schedule["charging_schedule_period"][0]["limit"] == 8.0

            report = await station.call(
                call201.GetChargingProfiles(
                    request_id=5, charging_profile={"chargingLimitSource": ["CSO"]}
                )
            )
            assert report.status == "Accepted"
            reports = await csms.wait_for_action(RAW_GROUP, "ReportChargingProfiles", count=2)
            assert [(r.payload["evse_id"], r.payload.get("tbc")) for r in reports] == [
                (1, True),
                (2, None),
            ]
            assert [r.payload["charging_profile"][0]["id"] for r in reports] == [21, 22]
            assert set(csms.received) == {RAW_GROUP}
            assert gateway.shared_stations[GROUP].boots_sent == 1
    finally:
        await csms.stop()


BASE: dict[str, Any] = {
    "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
    "chargers": [
        {"id": "A", "host": "127.0.0.1"},
        {"id": "B", "host": "127.0.0.2"},
        {"id": "C", "host": "127.0.0.3", "ocpp_version": "2.0.1"},
    ],
}


def problems(stations: list[dict[str, Any]]) -> list[str]:
    document = {**BASE, "upstream": {**BASE["upstream"], "stations": stations}}
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    return raised.value.problems


def test_groups_parse_and_bad_groups_name_the_key() -> None:
    config = parse_config(
        {
            **BASE,
            "upstream": {**BASE["upstream"], "stations": [{"id": "G", "chargers": ["B", "A"]}]},
        }
    )
    assert config.upstream.stations == (SharedStationSection("G", ("B", "A")),)
    assert parse_config(BASE).upstream.stations == ()

    assert problems([{"id": "G", "chargers": ["A", "X"]}]) == [
        "upstream.stations[0].chargers: unknown charger id 'X'"
    ]
    assert problems([{"id": "G", "chargers": ["A"]}, {"id": "H", "chargers": ["B", "A"]}]) == [
        "upstream.stations[1].chargers: charger 'A' is already in upstream.stations[0]"
    ]
    (mixed,) = problems([{"id": "G", "chargers": ["A", "C"]}])
    assert mixed.startswith("upstream.stations[0].chargers: one station speaks one OCPP version")
    assert problems([{"id": "B", "chargers": ["A"]}]) == [
        "upstream.stations[0].id: 'B' is the identity of charger 'B', which is not in this group"
    ]
    assert problems([{"id": "G", "chargers": []}]) == [
        "upstream.stations[0].chargers: must be a non-empty list of charger ids, got []"
    ]
    # One socket, one username: the chargers' own credentials must agree.
    secured: dict[str, Any] = {
        "upstream": {
            **BASE["upstream"],
            "security_profile": 1,
            "password": "0" * 32,
            "stations": [{"id": "G", "chargers": ["A", "B"]}],
        },
        "chargers": [{**BASE["chargers"][0], "ocpp_password": "a" * 32}, BASE["chargers"][1]],
    }
    with pytest.raises(ConfigError) as raised:
        parse_config(secured)
    assert raised.value.problems == [
        "upstream.stations[0].chargers: one station has one set of credentials, these chargers"
        " differ in ocpp_password / ocpp_cert_file / ocpp_key_file"
    ]
    assert problems([{"id": "G:1", "chargers": ["A"], "serial": "x"}]) == [
        "upstream.stations[0].serial: unknown key (allowed: chargers, id, serial_number)",
        "upstream.stations[0].id: must be at most 48 characters without ':', got 'G:1'",
    ]
