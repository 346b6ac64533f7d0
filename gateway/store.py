"""The gateway's durable state: one SQLite database.

It records charging sessions (at start, when the upstream transaction id arrives, and at
stop), and, per upstream OCPP charge point, the durable transaction-message queue (the outbox),
which session's StartTransaction/StopTransaction has been queued (so each is sent once, across
restarts), the authorization cache and the Local Authorization List (schema version 2).

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
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from gateway.core.reservations import Reservation
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
    # Version 2: OCPP 1.6 durable state per upstream charge point (ocpp.md §6, §9).
    # - ocpp_outbox: transaction messages not yet answered, in `seq` order (chronological);
    #   `failures` counts transmissions that failed to be processed (CALLERROR, timeout).
    # - ocpp_transactions: one row per session whose StartTransaction was queued; the
    #   transactionId once the central system assigned it; whether its Stop was queued. Rows
    #   are the "sent exactly once" record, so they outlive the outbox entries.
    # - ocpp_auth_cache, ocpp_local_list(_version): idTagInfo per identifier.
    # Sessions of version 1 already went upstream (or never will): mark them as handled.
    """
    CREATE TABLE ocpp_outbox (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        charge_point TEXT NOT NULL,
        session_id   TEXT NOT NULL,
        action       TEXT NOT NULL,
        payload      TEXT NOT NULL,
        failures     INTEGER NOT NULL DEFAULT 0,
        queued_at    TEXT NOT NULL
    );
    CREATE INDEX ocpp_outbox_order ON ocpp_outbox (charge_point, seq);
    CREATE TABLE ocpp_transactions (
        session_id     TEXT PRIMARY KEY,
        charge_point   TEXT NOT NULL,
        transaction_id INTEGER,
        stop_queued    INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO ocpp_transactions (session_id, charge_point, transaction_id, stop_queued)
        SELECT id, charger_id, CAST(upstream_transaction_id AS INTEGER), stopped_at IS NOT NULL
        FROM sessions WHERE upstream_transaction_id IS NOT NULL OR stopped_at IS NOT NULL;
    CREATE TABLE ocpp_auth_cache (
        charge_point  TEXT NOT NULL,
        id_tag        TEXT NOT NULL,
        status        TEXT NOT NULL,
        expiry_date   TEXT,
        parent_id_tag TEXT,
        updated_at    TEXT NOT NULL,
        PRIMARY KEY (charge_point, id_tag)
    );
    CREATE TABLE ocpp_local_list (
        charge_point  TEXT NOT NULL,
        id_tag        TEXT NOT NULL,
        status        TEXT NOT NULL,
        expiry_date   TEXT,
        parent_id_tag TEXT,
        PRIMARY KEY (charge_point, id_tag)
    );
    CREATE TABLE ocpp_local_list_version (
        charge_point TEXT PRIMARY KEY,
        version      INTEGER NOT NULL
    );
    """,
    # OCPI sessions, CDRs, tokens and charging profiles (gateway/ocpi/{tokens,sessions,cdrs,
    # charging_profiles}.py; ocpi.md §4). Objects are kept as their OCPI JSON (`body`) next
    # to the columns they are looked up or paged by. `last_updated` is RFC 3339 UTC text
    # in one fixed format, so text order is time order.
    # - ocpi_tokens: tokens partners pushed; `uid_key` is the upper-cased uid a charger's
    #   RFID reader is matched against.
    # - ocpi_sessions: what OCPI adds to a core session (owner eMSP, cdr_token, auth method).
    # - ocpi_session_samples: meter samples of a session, the source of its charging periods.
    # - ocpi_cdrs: immutable CDRs, one per session.
    # - ocpi_charging_profiles: the profile a partner set on an active session.
    """
    CREATE TABLE ocpi_tokens (
        country_code TEXT NOT NULL,
        party_id     TEXT NOT NULL,
        uid          TEXT NOT NULL,
        type         TEXT NOT NULL,
        uid_key      TEXT NOT NULL,
        body         TEXT NOT NULL,
        last_updated TEXT NOT NULL,
        PRIMARY KEY (country_code, party_id, uid, type)
    );
    CREATE INDEX ocpi_tokens_uid ON ocpi_tokens (uid_key, type);
    CREATE TABLE ocpi_sessions (
        session_id              TEXT PRIMARY KEY,
        country_code            TEXT,
        party_id                TEXT,
        cdr_token               TEXT NOT NULL,
        auth_method             TEXT NOT NULL,
        authorization_reference TEXT,
        last_updated            TEXT NOT NULL
    );
    CREATE TABLE ocpi_session_samples (
        session_id TEXT NOT NULL,
        at         TEXT NOT NULL,
        energy_wh  REAL NOT NULL,
        power_w    REAL NOT NULL,
        current_a  REAL NOT NULL,
        PRIMARY KEY (session_id, at)
    );
    CREATE TABLE ocpi_cdrs (
        id           TEXT PRIMARY KEY,
        session_id   TEXT NOT NULL UNIQUE,
        country_code TEXT,
        party_id     TEXT,
        body         TEXT NOT NULL,
        last_updated TEXT NOT NULL
    );
    CREATE INDEX ocpi_cdrs_updated ON ocpi_cdrs (last_updated, id);
    CREATE TABLE ocpi_charging_profiles (
        session_id TEXT PRIMARY KEY,
        charger_id TEXT NOT NULL,
        profile    TEXT NOT NULL,
        set_at     TEXT NOT NULL
    );
    """,
    # OCPP basic-auth passwords a central system set (1.6 AuthorizationKey, 2.0.1
    # SecurityCtrlr.BasicAuthPassword; gateway/ocpp/security.py): they replace the configured
    # one on every later connection, restarts included.
    """
    CREATE TABLE ocpp_credentials (
        charge_point TEXT PRIMARY KEY,
        password     TEXT NOT NULL,
        set_at       TEXT NOT NULL
    );
    """,
    # Monitoring (gateway/monitoring/{alarms,history}.py), written on transitions only:
    # - monitoring_alarms: every alarm raised, with its clearing time once cleared.
    # - charger_episodes: per charger, the spells it was down (kind "offline") or reported a
    #   fault ("fault", `detail` its codes); `ended_at` NULL while it lasts.
    # - monitoring_runs: when the gateway watched, so uptime counts only observed time.
    """
    CREATE TABLE monitoring_alarms (
        id         TEXT PRIMARY KEY,
        kind       TEXT NOT NULL,
        source     TEXT NOT NULL,
        severity   TEXT NOT NULL,
        message    TEXT NOT NULL,
        raised_at  TEXT NOT NULL,
        cleared_at TEXT
    );
    CREATE INDEX monitoring_alarms_raised ON monitoring_alarms (raised_at);
    CREATE TABLE charger_episodes (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        kind       TEXT NOT NULL,
        detail     TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at   TEXT
    );
    CREATE INDEX charger_episodes_by_charger ON charger_episodes (charger_id, started_at);
    CREATE TABLE monitoring_runs (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at TEXT NOT NULL,
        last_seen  TEXT NOT NULL,
        stopped_at TEXT
    );
    """,
    # OCPI partners and published EVSEs (gateway/ocpi/{partners,locations}.py):
    # - ocpi_partners: one row per partner: the token A we issued (until it registers), the
    #   token it presents to us, the token we present to it, its versions URL, version,
    #   endpoints and credentials roles (JSON), and its registration status.
    # - ocpi_evses: every EVSE ever published, so a charger removed from the configuration
    #   is served as REMOVED instead of disappearing (Locations are never deleted).
    # - ocpi_client_info: the ClientInfo a hub sent about the parties behind it.
    # - ocpi_published_tariffs: the tariffs last pushed, so a changed one is PUT again and a
    #   removed one DELETEd at the next start.
    """
    CREATE TABLE ocpi_partners (
        id           TEXT PRIMARY KEY,
        token_a      TEXT,
        token_in     TEXT,
        token_out    TEXT,
        raw_token    INTEGER NOT NULL DEFAULT 0,
        versions_url TEXT,
        version      TEXT,
        endpoints    TEXT NOT NULL DEFAULT '[]',
        roles        TEXT NOT NULL DEFAULT '[]',
        status       TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE TABLE ocpi_evses (
        uid          TEXT PRIMARY KEY,
        charger_id   TEXT NOT NULL,
        body         TEXT NOT NULL,
        last_updated TEXT NOT NULL
    );
    CREATE TABLE ocpi_client_info (
        country_code TEXT NOT NULL,
        party_id     TEXT NOT NULL,
        hub          TEXT NOT NULL,
        body         TEXT NOT NULL,
        last_updated TEXT NOT NULL,
        PRIMARY KEY (country_code, party_id)
    );
    CREATE TABLE ocpi_published_tariffs (
        id           TEXT PRIMARY KEY,
        path         TEXT NOT NULL,
        body         TEXT NOT NULL
    );
    """,
    # OCPP charging profiles and connector reservations:
    # - ocpp_charging_profiles (gateway/ocpp/smart_charging.py): the profiles a central system
    #   installed on a charge point, as received (`body`, in the form of `version`), with the
    #   connector (0 = the station), the session of a TxProfile and the installation time.
    # - reservations (gateway/core/reservations.py): reservations held by connectors; times
    #   are ISO 8601 UTC text.
    """
    CREATE TABLE ocpp_charging_profiles (
        charge_point TEXT NOT NULL,
        profile_id   INTEGER NOT NULL,
        connector_id INTEGER NOT NULL,
        session_id   TEXT,
        version      TEXT NOT NULL,
        body         TEXT NOT NULL,
        installed_at TEXT NOT NULL,
        PRIMARY KEY (charge_point, profile_id)
    );
    CREATE TABLE reservations (
        charger_id     TEXT NOT NULL,
        reservation_id INTEGER NOT NULL,
        connector_id   INTEGER NOT NULL,
        id_tag         TEXT NOT NULL,
        parent_id_tag  TEXT,
        expires_at     TEXT NOT NULL,
        source         TEXT NOT NULL,
        PRIMARY KEY (charger_id, reservation_id)
    );
    """,
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

BUSY_TIMEOUT_S: Final = 5.0
"""How long a statement waits for a lock held by another process (e.g. an operator's sqlite3
shell reading the database) before failing."""


class StoreError(Exception):
    """The database cannot be opened or is from a newer gateway."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A transaction message waiting in a charge point's outbox."""

    seq: int
    """Queue order: a larger seq was queued later."""
    session_id: str
    action: str
    payload: dict[str, Any]
    failures: int
    """Transmissions that failed to be processed so far."""
    queued_at: str


@dataclass(frozen=True, slots=True)
class UpstreamTransaction:
    """What went upstream for one session: its transactionId once assigned, and whether its
    StopTransaction has been queued (it is then never queued again)."""

    session_id: str
    transaction_id: int | None
    stop_queued: bool


@dataclass(frozen=True, slots=True)
class StoredIdTag:
    """An identifier with its OCPP idTagInfo, as the cache or the local list keeps it. Times
    are ISO 8601 text."""

    id_tag: str
    status: str
    expiry_date: str | None = None
    parent_id_tag: str | None = None
    updated_at: str | None = None
    """When the cache learned it (cache entries only)."""


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

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` (queries only) on the store's thread, for modules that own their own
        tables (added by a migration below) and keep their SQL next to their model."""
        return await self._run(work)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the store's thread inside one BEGIN IMMEDIATE ... COMMIT (rolled
        back if it raises); committed with synchronous=FULL before this returns."""

        def transaction(db: sqlite3.Connection) -> T:
            with _transaction(db):
                return work(db)

        return await self._run(transaction)

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

    async def sessions_page(
        self, *, charger_id: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Session], int]:
        """One page of recorded sessions, newest first, and how many there are in all (of
        one charger, or all)."""
        where, args = ("", ()) if charger_id is None else ("WHERE charger_id = ?", (charger_id,))

        def read(db: sqlite3.Connection) -> tuple[list[Session], int]:
            total = db.execute(f"SELECT count(*) FROM sessions {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM sessions {where} ORDER BY started_at DESC, id LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
            return [_session_from_row(row) for row in rows], int(total)

        return await self._run(read)

    # --- OCPP outbox -------------------------------------------------------------------------

    async def outbox(self, charge_point: str) -> list[OutboxMessage]:
        """The charge point's queued transaction messages, oldest first."""
        return await self._run(
            lambda db: [
                _outbox_from_row(row)
                for row in db.execute(
                    "SELECT * FROM ocpp_outbox WHERE charge_point = ? ORDER BY seq",
                    (charge_point,),
                )
            ]
        )

    async def outbox_append(
        self,
        charge_point: str,
        session_id: str,
        action: str,
        payload: dict[str, Any],
        queued_at: str,
    ) -> OutboxMessage | None:
        """Queue a message durably (committed with synchronous=FULL before this returns).

        A "StartTransaction" or "StopTransaction" is queued at most once per session, ever:
        None when it already was (the message is not queued again)."""

        def write(db: sqlite3.Connection) -> OutboxMessage | None:
            with _transaction(db):
                if action == "StartTransaction":
                    inserted = db.execute(
                        "INSERT OR IGNORE INTO ocpp_transactions (session_id, charge_point)"
                        " VALUES (?, ?)",
                        (session_id, charge_point),
                    ).rowcount
                    if not inserted:
                        return None
                elif action == "StopTransaction":
                    db.execute(
                        "INSERT OR IGNORE INTO ocpp_transactions (session_id, charge_point)"
                        " VALUES (?, ?)",
                        (session_id, charge_point),
                    )
                    marked = db.execute(
                        "UPDATE ocpp_transactions SET stop_queued = 1"
                        " WHERE session_id = ? AND stop_queued = 0",
                        (session_id,),
                    ).rowcount
                    if not marked:
                        return None
                cursor = db.execute(
                    "INSERT INTO ocpp_outbox (charge_point, session_id, action, payload,"
                    " queued_at) VALUES (?, ?, ?, ?, ?)",
                    (charge_point, session_id, action, json.dumps(payload), queued_at),
                )
                assert cursor.lastrowid is not None
                return OutboxMessage(cursor.lastrowid, session_id, action, payload, 0, queued_at)

        return await self._run(write)

    async def outbox_answered(
        self, seq: int, *, session_id: str | None = None, transaction_id: int | None = None
    ) -> None:
        """Remove an answered message; with `transaction_id`, record the id the central system
        assigned to `session_id` in the same transaction."""

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("DELETE FROM ocpp_outbox WHERE seq = ?", (seq,))
                if session_id is not None and transaction_id is not None:
                    db.execute(
                        "UPDATE ocpp_transactions SET transaction_id = ? WHERE session_id = ?",
                        (transaction_id, session_id),
                    )

        await self._run(write)

    async def outbox_failed(self, seq: int) -> None:
        """Count one more failed transmission of a message."""

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("UPDATE ocpp_outbox SET failures = failures + 1 WHERE seq = ?", (seq,))

        await self._run(write)

    async def outbox_drop(self, seqs: Iterable[int]) -> None:
        """Remove messages that will not be sent."""
        wanted = [(seq,) for seq in seqs]

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany("DELETE FROM ocpp_outbox WHERE seq = ?", wanted)

        await self._run(write)

    async def upstream_transactions(self, charge_point: str) -> dict[str, UpstreamTransaction]:
        """Session id → what went upstream for it, for the charge point's sessions."""
        return await self._run(
            lambda db: {
                row["session_id"]: UpstreamTransaction(
                    row["session_id"], row["transaction_id"], bool(row["stop_queued"])
                )
                for row in db.execute(
                    "SELECT * FROM ocpp_transactions WHERE charge_point = ?", (charge_point,)
                )
            }
        )

    # --- OCPP credentials --------------------------------------------------------------------

    async def upstream_password(self, charge_point: str) -> str | None:
        """The basic-auth password the central system set for a charge point, if any."""

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT password FROM ocpp_credentials WHERE charge_point = ?", (charge_point,)
            ).fetchone()
            return None if row is None else str(row["password"])

        return await self._run(read)

    async def set_upstream_password(self, charge_point: str, password: str, at: datetime) -> None:
        """Remember the password the central system set (replacing an earlier one)."""

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT INTO ocpp_credentials (charge_point, password, set_at)"
                    " VALUES (?, ?, ?) ON CONFLICT (charge_point) DO UPDATE SET"
                    " password = excluded.password, set_at = excluded.set_at",
                    (charge_point, password, at.isoformat()),
                )

        await self._run(write)

    # --- OCPP authorization cache and local list ---------------------------------------------

    async def auth_cache(self, charge_point: str) -> list[StoredIdTag]:
        return await self._run(
            lambda db: [
                _id_tag_from_row(row)
                for row in db.execute(
                    "SELECT * FROM ocpp_auth_cache WHERE charge_point = ?", (charge_point,)
                )
            ]
        )

    async def auth_cache_update(
        self, charge_point: str, put: Iterable[StoredIdTag], remove: Iterable[str] = ()
    ) -> None:
        """Insert or replace `put` and delete `remove`, in one transaction."""
        rows = [
            (charge_point, e.id_tag, e.status, e.expiry_date, e.parent_id_tag, e.updated_at or "")
            for e in put
        ]
        gone = [(charge_point, id_tag) for id_tag in remove]

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.executemany(
                    "DELETE FROM ocpp_auth_cache WHERE charge_point = ? AND id_tag = ?", gone
                )
                db.executemany(
                    "INSERT OR REPLACE INTO ocpp_auth_cache (charge_point, id_tag, status,"
                    " expiry_date, parent_id_tag, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

        await self._run(write)

    async def auth_cache_clear(self, charge_point: str) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("DELETE FROM ocpp_auth_cache WHERE charge_point = ?", (charge_point,))

        await self._run(write)

    async def local_list(self, charge_point: str) -> tuple[int, list[StoredIdTag]]:
        """(version, entries); version 0 when no list was ever sent."""

        def read(db: sqlite3.Connection) -> tuple[int, list[StoredIdTag]]:
            row = db.execute(
                "SELECT version FROM ocpp_local_list_version WHERE charge_point = ?",
                (charge_point,),
            ).fetchone()
            entries = [
                _id_tag_from_row(entry)
                for entry in db.execute(
                    "SELECT * FROM ocpp_local_list WHERE charge_point = ?", (charge_point,)
                )
            ]
            return (int(row["version"]) if row is not None else 0), entries

        return await self._run(read)

    async def local_list_replace(
        self, charge_point: str, version: int, entries: Iterable[StoredIdTag]
    ) -> None:
        """Make `entries` the whole list, at `version`, in one transaction."""
        rows = [(charge_point, e.id_tag, e.status, e.expiry_date, e.parent_id_tag) for e in entries]

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("DELETE FROM ocpp_local_list WHERE charge_point = ?", (charge_point,))
                db.executemany(
                    "INSERT INTO ocpp_local_list (charge_point, id_tag, status, expiry_date,"
                    " parent_id_tag) VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                db.execute(
                    "INSERT OR REPLACE INTO ocpp_local_list_version (charge_point, version)"
                    " VALUES (?, ?)",
                    (charge_point, version),
                )

        await self._run(write)

    # --- reservations (ReservationLedger) ------------------------------------------------------

    async def reservations(self) -> list[Reservation]:
        """Every reservation held, expired ones included (the site ends those at start-up)."""

        def read(db: sqlite3.Connection) -> list[Reservation]:
            return [
                Reservation(
                    charger_id=row["charger_id"],
                    connector_id=row["connector_id"],
                    reservation_id=row["reservation_id"],
                    id_tag=row["id_tag"],
                    parent_id_tag=row["parent_id_tag"],
                    expires_at=datetime.fromisoformat(row["expires_at"]),
                    source=row["source"],
                )
                for row in db.execute("SELECT * FROM reservations ORDER BY expires_at")
            ]

        return await self._run(read)

    async def record_reservation(self, reservation: Reservation) -> None:
        """Add a reservation, or replace the one with its charger and id."""
        row = (
            reservation.charger_id,
            reservation.reservation_id,
            reservation.connector_id,
            reservation.id_tag,
            reservation.parent_id_tag,
            reservation.expires_at.isoformat(),
            reservation.source,
        )

        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "INSERT OR REPLACE INTO reservations (charger_id, reservation_id,"
                    " connector_id, id_tag, parent_id_tag, expires_at, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    row,
                )

        await self._run(write)

    async def delete_reservation(self, charger_id: str, reservation_id: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute(
                    "DELETE FROM reservations WHERE charger_id = ? AND reservation_id = ?",
                    (charger_id, reservation_id),
                )

        await self._run(write)


def _outbox_from_row(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        seq=row["seq"],
        session_id=row["session_id"],
        action=row["action"],
        payload=json.loads(row["payload"]),
        failures=row["failures"],
        queued_at=row["queued_at"],
    )


def _id_tag_from_row(row: sqlite3.Row) -> StoredIdTag:
    keys = row.keys()
    return StoredIdTag(
        id_tag=row["id_tag"],
        status=row["status"],
        expiry_date=row["expiry_date"],
        parent_id_tag=row["parent_id_tag"],
        updated_at=row["updated_at"] if "updated_at" in keys else None,
    )


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode (isolation_level=None) with explicit transactions: the sqlite3
        # module's implicit BEGIN does not cover DDL, and migrations must be atomic.
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except (OSError, sqlite3.Error) as error:
        # e.g. a file where the directory should be, or no write permission there.
        raise StoreError(f"{path}: cannot open: {error}") from error
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
