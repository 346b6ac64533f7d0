"""The SQLite store: schema version, session records, reopening."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.core.session import Session, SessionOrigin, StopReason
from gateway.store import SCHEMA_VERSION, Store, StoreError

STARTED = Session(
    id="s-1",
    charger_id="CP-1",
    connector_id=1,
    id_tag="TAG",
    origin=SessionOrigin.LOCAL,
    started_at=datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
    meter_start_wh=1000.5,
)


async def test_session_lifecycle_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "evgw.sqlite3"
    store = await Store.open(path)
    await store.record_session_started(STARTED)
    await store.record_upstream_transaction_id("s-1", "42")
    assert [s.id for s in await store.open_sessions()] == ["s-1"]
    ended = STARTED.ended(datetime(2025, 1, 1, 13, 0, tzinfo=UTC), 2000.0, StopReason.REMOTE)
    await store.record_session_ended(ended)
    await store.close()
    await store.close()  # idempotent

    reopened = await Store.open(path)
    try:
        (session,) = await reopened.sessions("CP-1")
        assert await reopened.open_sessions() == []
    finally:
        await reopened.close()
    assert session.upstream_transaction_id == "42"
    assert session.stop_reason is StopReason.REMOTE
    assert session.energy_wh == 999.5
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_refuses_a_newer_schema_and_garbage(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        await Store.open(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        await Store.open(garbage)


async def test_version_2_marks_sessions_of_version_1_as_already_upstream(tmp_path: Path) -> None:
    from gateway.store import _MIGRATIONS

    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        rows = [
            ("done", "2025-01-01T13:00:00+00:00", "7"),
            ("open-with-id", None, "8"),
            ("open-without-id", None, None),
        ]
        for session_id, stopped_at, transaction_id in rows:
            db.execute(
                "INSERT INTO sessions (id, charger_id, connector_id, id_tag, origin,"
                " started_at, meter_start_wh, stopped_at, upstream_transaction_id)"
                " VALUES (?, 'CP-1', 1, 'TAG', 'Local', '2025-01-01T12:00:00+00:00', 0, ?, ?)",
                (session_id, stopped_at, transaction_id),
            )
    store = await Store.open(path)
    try:
        upstream = await store.upstream_transactions("CP-1")
        assert await store.outbox("CP-1") == []
    finally:
        await store.close()
    assert {k: (v.transaction_id, v.stop_queued) for k, v in upstream.items()} == {
        "done": (7, True),
        "open-with-id": (8, False),
    }  # the open session without an id has its StartTransaction still to go


async def test_outbox_start_and_stop_are_queued_once_per_session(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "evgw.sqlite3")
    try:
        at = "2025-01-01T12:00:00+00:00"
        start = await store.outbox_append("CP-1", "s-1", "StartTransaction", {"a": 1}, at)
        assert start is not None
        assert await store.outbox_append("CP-1", "s-1", "StartTransaction", {}, at) is None
        meter = await store.outbox_append("CP-1", "s-1", "MeterValues", {"m": 1}, at)
        again = await store.outbox_append("CP-1", "s-1", "MeterValues", {"m": 2}, at)
        assert meter is not None
        assert again is not None
        stop = await store.outbox_append("CP-1", "s-1", "StopTransaction", {"z": 1}, at)
        assert stop is not None
        assert await store.outbox_append("CP-1", "s-1", "StopTransaction", {}, at) is None
        await store.outbox_answered(start.seq, session_id="s-1", transaction_id=42)
        await store.outbox_failed(meter.seq)
        await store.outbox_drop([again.seq])
        queued = await store.outbox("CP-1")
        (transaction,) = (await store.upstream_transactions("CP-1")).values()
    finally:
        await store.close()
    assert [(m.action, m.payload, m.failures) for m in queued] == [
        ("MeterValues", {"m": 1}, 1),
        ("StopTransaction", {"z": 1}, 0),
    ]
    assert (transaction.transaction_id, transaction.stop_queued) == (42, True)
