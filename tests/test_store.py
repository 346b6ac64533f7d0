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
