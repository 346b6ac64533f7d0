"""The durable transaction-message queue: a real pymodbus simulator, the gateway as `evgw run`
wires it, a central system built on the `ocpp` package that goes down and comes back, and the
real SQLite store, including a gateway restart on the same database."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ocpp.v16 import call

from gateway.modbus import SimulatedCharger
from gateway.ocpp.transaction_queue import (
    ReplayPacer,
    TransactionOutbox,
    overflow_victims,
    retry_wait_s,
)
from gateway.runtime import Gateway
from gateway.store import OutboxMessage, Store
from tests.ocpp.central_system_ocpp import SAFETY_DEADLINE_S, OcppPackageCsms, Received
from tests.ocpp.test_station16 import CHARGER_ID, has_status, running_gateway

TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll `condition`; the deadline only guards against a hung test."""
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        # Polled: the states waited on (queues, connections) belong to the gateway and offer
        # no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def fast_gateway(
    csms: OcppPackageCsms, simulator: SimulatedCharger, store: Path
) -> AsyncIterator[Gateway]:
    """The gateway with a short reconnect back-off and replay pace, so tests do not wait
    for the production values."""
    async with running_gateway(csms, simulator, store) as gateway:
        station = gateway.stations[CHARGER_ID]
        station.backoff.minimum_s = 0.1
        station.backoff.random_range_s = 0.1
        station.backoff.repeat_times = 1
        station.pacer.interval_s = 0.02
        yield gateway


def transaction_messages(received: list[Received]) -> list[Received]:
    return [m for m in received if m.action in TRANSACTION_ACTIONS]


def message_time(message: Received) -> datetime:
    if message.action == "MeterValues":
        text = message.payload["meter_value"][0]["timestamp"]
    else:
        text = message.payload["timestamp"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def queued_time(message: OutboxMessage) -> datetime:
    """The timestamp a queued message carries (as the central system will see it)."""
    return message_time(
        Received(
            message.action, {"meter_value": message.payload.get("meterValue"), **message.payload}
        )
    )


async def go_offline(csms: OcppPackageCsms, gateway: Gateway) -> None:
    station = gateway.stations[CHARGER_ID]
    await csms.stop()
    await wait_until(lambda: not station.connection.connected)


async def allow_unknown_ids_offline(csms: OcppPackageCsms) -> None:
    answer = await csms.charge_points[CHARGER_ID].call(
        call.ChangeConfiguration(key="AllowOfflineTxForUnknownId", value="true")
    )
    assert answer.status == "Accepted"


def queued_actions(gateway: Gateway) -> list[str]:
    return [m.action for m in gateway.stations[CHARGER_ID].outbox.messages]


async def test_a_session_while_the_central_system_is_down_arrives_afterwards_in_order(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with fast_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway:
        station = gateway.stations[CHARGER_ID]
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        await allow_unknown_ids_offline(csms)
        await go_offline(csms, gateway)

        simulator.plug_in(rfid="TAG-OFF", energy_needed_wh=50_000)
        await wait_until(lambda: queued_actions(gateway).count("MeterValues") >= 3)
        simulator.unplug()
        await wait_until(lambda: "StopTransaction" in queued_actions(gateway))
        queued = station.outbox.messages
        assert queued[0].action == "StartTransaction"
        assert all("transactionId" not in m.payload for m in queued)  # none known yet
        back_at = datetime.now(UTC)

        await csms.start()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        await wait_until(lambda: len(station.outbox) == 0)
        sent = transaction_messages(csms.received[CHARGER_ID])

    assert [m.action for m in sent] == [m.action for m in queued]
    start, *meter_values, stop = sent
    transaction_id = start.payload["transaction_id"]
    assert transaction_id > 0
    assert stop.payload["transaction_id"] == transaction_id
    assert [m.payload["transaction_id"] for m in meter_values] == [transaction_id] * len(
        meter_values
    )
    assert start.payload["id_tag"] == "TAG-OFF"
    assert stop.payload["reason"] == "EVDisconnected"
    # The original timestamps, in chronological order, all from before the replay.
    times = [message_time(m) for m in sent]
    assert times == sorted(times)
    assert times[-1] <= back_at
    assert [message_time(m) for m in sent] == [queued_time(m) for m in queued]


async def test_a_gateway_restart_mid_session_loses_nothing_and_sends_one_stop(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store = tmp_path / "evgw.sqlite3"
    async with fast_gateway(csms, simulator, store) as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        await allow_unknown_ids_offline(csms)
        await go_offline(csms, gateway)
        simulator.plug_in(rfid="TAG-R", energy_needed_wh=50_000)
        await wait_until(lambda: queued_actions(gateway).count("MeterValues") >= 2)
        first_run = gateway.stations[CHARGER_ID].outbox.messages

    # The gateway stopped mid-session with the central system still down.
    async with fast_gateway(csms, simulator, store) as gateway:
        station = gateway.stations[CHARGER_ID]
        await station.wait_loaded()
        assert station.outbox.messages[: len(first_run)] == first_run
        simulator.unplug()
        await wait_until(lambda: "StopTransaction" in queued_actions(gateway))
        await csms.start()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        await wait_until(lambda: len(station.outbox) == 0)
        after_second_run = transaction_messages(csms.received[CHARGER_ID])

    # A third run has nothing left to send; a new session's Stop follows the first one, so
    # a duplicate would have arrived before it (one queue, in order).
    async with fast_gateway(csms, simulator, store) as gateway:
        station = gateway.stations[CHARGER_ID]
        await station.wait_loaded()
        assert station.outbox.messages == []
        await csms.wait_for_action(CHARGER_ID, "BootNotification", count=3)
        simulator.plug_in(rfid="TAG-NEXT", energy_needed_wh=50_000)
        await csms.wait_for_action(CHARGER_ID, "StartTransaction", count=2)
        simulator.unplug()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction", count=2)
        everything = transaction_messages(csms.received[CHARGER_ID])

    first = after_second_run
    assert first[0].action == "StartTransaction"
    assert first[-1].action == "StopTransaction"
    assert [m.action for m in first].count("StopTransaction") == 1
    transaction_id = first[0].payload["transaction_id"]
    assert all(m.payload["transaction_id"] == transaction_id for m in first)
    # Nothing of the first run was lost: its messages went first, with their timestamps.
    assert [message_time(m) for m in first[: len(first_run)]] == [queued_time(m) for m in first_run]
    stops = [m for m in everything if m.action == "StopTransaction"]
    assert [s.payload["id_tag"] for s in stops] == ["TAG-R", "TAG-NEXT"]
    assert stops[0].payload["transaction_id"] != stops[1].payload["transaction_id"]


async def test_call_errors_get_retries_with_fresh_ids_then_the_message_is_dropped(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    csms.fail_calls["StartTransaction"] = 3
    async with fast_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway:
        station = gateway.stations[CHARGER_ID]
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        charge_point = csms.charge_points[CHARGER_ID]
        for key, value in (
            ("TransactionMessageAttempts", "3"),
            ("TransactionMessageRetryInterval", "1"),
        ):
            answer = await charge_point.call(call.ChangeConfiguration(key=key, value=value))
            assert answer.status == "Accepted"
        configuration = await charge_point.call(
            call.GetConfiguration(
                key=["TransactionMessageAttempts", "TransactionMessageRetryInterval"]
            )
        )
        assert [k["value"] for k in configuration.configuration_key] == ["3", "1"]

        simulator.plug_in(rfid="TAG-1", energy_needed_wh=50_000)
        await csms.wait_for_action(CHARGER_ID, "StartTransaction", count=3)
        simulator.unplug()
        # The first session's Start was given up; its MeterValues and Stop, which have no
        # transactionId to carry, go with it. A later session goes through normally.
        await wait_until(lambda: len(station.outbox) == 0)
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
        simulator.plug_in(rfid="TAG-2", energy_needed_wh=50_000)
        starts = await csms.wait_for_action(CHARGER_ID, "StartTransaction", count=4)
        simulator.unplug()
        await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        await wait_until(lambda: len(station.outbox) == 0)
        sent = transaction_messages(csms.received[CHARGER_ID])
        message_ids = csms.message_ids(CHARGER_ID, "StartTransaction")

    assert len(starts) == 4
    assert len(set(message_ids)) == 4  # a fresh id for every send
    retried = [s.payload for s in starts[:3]]
    assert all(p["id_tag"] == "TAG-1" for p in retried)
    assert len({p["timestamp"] for p in retried}) == 1  # the same message, resent
    transaction_id = starts[3].payload["transaction_id"]
    later = [m for m in sent if m.action != "StartTransaction"]
    assert later  # MeterValues and the Stop of the second session
    assert all(m.payload["transaction_id"] == transaction_id for m in later)
    (stop,) = [m for m in later if m.action == "StopTransaction"]
    assert stop.payload["id_tag"] == "TAG-2"


# --- the queue's rules, on a real SQLite store ---------------------------------------------


async def test_a_full_queue_thins_meter_values_and_never_drops_a_start_or_stop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queue.sqlite3"
    store = await Store.open(path)
    try:
        outbox = TransactionOutbox(store, "CP-1", limit=6)
        await outbox.load()
        at = datetime(2025, 1, 1, tzinfo=UTC)
        names: dict[int, str] = {}

        async def add(session: str, action: str, name: str) -> None:
            message = await outbox.append(session, action, {"name": name}, at)
            assert message is not None
            names[message.seq] = name

        await add("s1", "StartTransaction", "S1")
        for number in range(1, 7):
            await add("s1", "MeterValues", f"M{number}")
        assert [names[m.seq] for m in outbox.messages] == ["S1", "M1", "M3", "M5"]
        await add("s1", "StopTransaction", "T1")
        await add("s2", "StartTransaction", "S2")
        await add("s2", "StopTransaction", "T2")
        kept = [names[m.seq] for m in outbox.messages]
        assert kept == ["S1", "M1", "M5", "T1", "S2", "T2"]
        # A Start or Stop is queued once per session, ever.
        assert await outbox.append("s1", "StartTransaction", {}, at) is None
        assert await outbox.append("s2", "StopTransaction", {}, at) is None
        # MeterValues go until only Starts and Stops are left, which may exceed the bound.
        for number in range(3, 6):
            await add(f"s{number}", "StartTransaction", f"S{number}")
        final = [names[m.seq] for m in outbox.messages]
        assert final == ["S1", "T1", "S2", "T2", "S3", "S4", "S5"]
    finally:
        await store.close()

    reopened = await Store.open(path)
    try:
        again = TransactionOutbox(reopened, "CP-1", limit=6)
        await again.load()
        assert [names[m.seq] for m in again.messages] == final
        assert await reopened.outbox("CP-2") == []
    finally:
        await reopened.close()


def test_overflow_spares_the_head_and_takes_a_lone_meter_value() -> None:
    def message(seq: int, action: str) -> OutboxMessage:
        return OutboxMessage(seq, "s", action, {}, 0, "")

    head_mv = [message(1, "MeterValues"), message(2, "StartTransaction")]
    assert overflow_victims(head_mv, 1) == []
    lone = [
        message(1, "StartTransaction"),
        message(2, "MeterValues"),
        message(3, "StopTransaction"),
    ]
    assert [m.seq for m in overflow_victims(lone, 2)] == [2]
    assert overflow_victims(lone, 3) == []


def test_retry_waits_grow_with_the_transmissions_and_the_pace_has_a_floor() -> None:
    # 1.6 §3.7's example: 3 attempts 60 s apart wait 60 s, then 120 s.
    assert [retry_wait_s(60, n) for n in (1, 2)] == [60, 120]
    pacer = ReplayPacer(0.5)
    assert pacer.delay(100.0) == 0.0
    pacer.sent(100.0)
    assert pacer.delay(100.2) == pytest.approx(0.3)
    assert pacer.delay(100.5) == 0.0
