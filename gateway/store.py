"""The gateway's durable state: one SQLite database.

Today it records charging sessions (at start, when the upstream transaction id arrives, and at
stop). The durable offline message queue of a later issue will live here too, as a new schema
version.

Choices:
- **WAL journal, `synchronous=FULL`.** Sessions are billing records. In WAL mode `NORMAL`
  survives a process crash but may lose the last commits on power loss, which is exactly how
  edge gateways in meter cabinets tend to die; `FULL` fsyncs the WAL on every commit. With a
  handful of commits per session the cost is irrelevant.
- **One worker thread.** A commit with `FULL` waits for an fsync, tens of milliseconds on the
  SD cards and eMMC that edge devices boot from: too long to hold the event loop. All database
  work runs on a single dedicated thread, which also keeps writes in submission order and
  satisfies sqlite3's one-connection-per-thread rule without locks.
- **Schema versioned with `PRAGMA user_version`**; migrations are applied in order at open, in
  one transaction each.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Final, TypeVar

from gateway.core.session import Session, SessionOrigin, StopReason

T = TypeVar("T")

_MIGRATIONS: Final[tuple[str, ...]] = (
    # Version 1: sessions. Times are ISO 8601 UTC text; energies are the charger's lifetime
    # register in Wh (REAL, since registers have sub-Wh resolution).
    """
    CREATE TABLE sessions (
        id                      TEXT PRIMARY KEY,
        charger_id              TEXT NOT NULL,
        connector_id            INTEGER NOT NULL,
        id_tag                  TEXT NOT NULL,
        origin                  TEXT NOT NULL,
        started_at              TEXT NOT NULL,
        meter_start_wh          REAL NOT NULL,
        stopped_at              TEXT,
        meter_stop_wh           REAL,
        stop_reason             TEXT,
        upstream_transaction_id TEXT
    );
    CREATE INDEX sessions_open ON sessions (charger_id) WHERE stopped_at IS NULL;
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

BUSY_TIMEOUT_S: Final = 5.0
"""How long a statement waits for a lock held by another process (e.g. an operator's sqlite3
shell reading the database) before failing."""


class StoreError(Exception):
    """The database cannot be opened or is from a newer gateway."""


class Store:
    """The SQLite store. Open with `await Store.open(path)`; close with `await close()`.

    Every method runs on the store's own thread; awaiting it does not block the event loop.
    It implements `gateway.core.site.SessionLedger`.
    """

    def __init__(self, path: Path, executor: ThreadPoolExecutor, db: sqlite3.Connection) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = executor
        self._db = db

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        """Open (creating it and its directory if needed) and migrate the database. Raises
        `StoreError` when the file is not a usable database or its schema is newer."""
        path = Path(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evgw-store")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(executor, _connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(path, executor, db)

    async def close(self) -> None:
        """Finish pending writes and close. Idempotent."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, self._db.close)
        executor.shutdown(wait=True)

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        executor = self._executor
        if executor is None:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, work, self._db)

    # --- sessions (SessionLedger) ------------------------------------------------------------

    async def record_session_started(self, session: Session) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT OR REPLACE INTO sessions (id, charger_id, connector_id, id_tag,"
                    " origin, started_at, meter_start_wh, stopped_at, meter_stop_wh,"
                    " stop_reason, upstream_transaction_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _session_row(session),
                )

        await self._run(write)

    async def record_upstream_transaction_id(self, session_id: str, value: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "UPDATE sessions SET upstream_transaction_id = ? WHERE id = ?",
                    (value, session_id),
                )

        await self._run(write)

    async def record_session_ended(self, session: Session) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT INTO sessions (id, charger_id, connector_id, id_tag, origin,"
                    " started_at, meter_start_wh, stopped_at, meter_stop_wh, stop_reason,"
                    " upstream_transaction_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET stopped_at = excluded.stopped_at,"
                    " meter_stop_wh = excluded.meter_stop_wh,"
                    " stop_reason = excluded.stop_reason,"
                    " upstream_transaction_id = COALESCE(excluded.upstream_transaction_id,"
                    " sessions.upstream_transaction_id)",
                    _session_row(session),
                )

        await self._run(write)

    async def open_sessions(self) -> list[Session]:
        return await self._run(
            lambda db: [
                _session_from_row(row)
                for row in db.execute(
                    "SELECT * FROM sessions WHERE stopped_at IS NULL ORDER BY started_at"
                )
            ]
        )

    async def sessions(self, charger_id: str | None = None) -> list[Session]:
        """Every recorded session (of one charger, or all), oldest first."""
        if charger_id is None:
            query = "SELECT * FROM sessions ORDER BY started_at"
            args: tuple[str, ...] = ()
        else:
            query = "SELECT * FROM sessions WHERE charger_id = ? ORDER BY started_at"
            args = (charger_id,)
        return await self._run(
            lambda db: [_session_from_row(row) for row in db.execute(query, args)]
        )


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode (isolation_level=None) with explicit transactions: the sqlite3 module's
    # implicit BEGIN does not cover DDL, and migrations must be atomic.
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal" and str(path) != ":memory:":
            raise StoreError(f"{path}: cannot switch to WAL journal (got {mode!r})")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        _migrate(db, path)
    except sqlite3.DatabaseError as error:
        db.close()
        raise StoreError(f"{path}: not a usable SQLite database: {error}") from error
    except BaseException:
        db.close()
        raise
    return db


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock up front, so a busy database fails early rather
    than mid-transaction) ... COMMIT, or ROLLBACK on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema version {version} is newer than this gateway's ({SCHEMA_VERSION})"
        )
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        statements = [part.strip() for part in script.split(";") if part.strip()]
        with _transaction(db):
            for statement in statements:
                db.execute(statement)
            # PRAGMA does not accept parameters; `number` is an int from enumerate.
            db.execute(f"PRAGMA user_version = {number}")


def _session_row(session: Session) -> tuple[object, ...]:
    return (
        session.id,
        session.charger_id,
        session.connector_id,
        session.id_tag,
        session.origin.value,
        session.started_at.isoformat(),
        session.meter_start_wh,
        session.stopped_at.isoformat() if session.stopped_at else None,
        session.meter_stop_wh,
        session.stop_reason.value if session.stop_reason else None,
        session.upstream_transaction_id,
    )


def _session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        charger_id=row["charger_id"],
        connector_id=row["connector_id"],
        id_tag=row["id_tag"],
        origin=SessionOrigin(row["origin"]),
        started_at=datetime.fromisoformat(row["started_at"]),
        meter_start_wh=row["meter_start_wh"],
        stopped_at=datetime.fromisoformat(row["stopped_at"]) if row["stopped_at"] else None,
        meter_stop_wh=row["meter_stop_wh"],
        stop_reason=StopReason(row["stop_reason"]) if row["stop_reason"] else None,
        upstream_transaction_id=row["upstream_transaction_id"],
    )
