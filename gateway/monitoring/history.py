"""Uptime and fault history per charger, for maintenance planning, in the store.

What is recorded (tables of `gateway.store`'s monitoring migration):

- **Episodes**: per charger, each spell it was down (kind "offline": not answering for longer
  than the alarm grace, backdated to when it stopped answering) or reported a fault ("fault",
  with its OCPP and vendor codes). An episode is written when it starts and when it ends:
  writes follow transitions, never polls.
- **Runs**: when the gateway was watching. Uptime counts only observed time, so a gateway
  that was switched off does not count against its chargers. A run that ended without a
  clean stop (power cut) ends at its last mark, written every `RUN_MARK_INTERVAL_S`; its
  open episodes are closed there at the next start.

`summary()` answers, per charger, its uptime share over a window, its number of faults
there and its last fault: what the local API serves.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from gateway.core.clock import Clock, SystemClock
from gateway.store import Store

RUN_MARK_INTERVAL_S: Final = 600.0
"""How often a running gateway marks itself alive in the store: after a power cut its last
run counts as observed up to its last mark, so at most this much observed time is lost
(one tiny write per ten minutes)."""
DEFAULT_WINDOW_S: Final = 30 * 86400.0
"""The default uptime window: thirty days, a maintenance planning horizon."""

EpisodeKind = Literal["offline", "fault"]


@dataclass(frozen=True, slots=True)
class Episode:
    """A spell a charger was offline or faulted; `ended_at` None while it lasts."""

    id: int
    charger_id: str
    kind: str
    detail: str
    started_at: datetime
    ended_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "charger_id": self.charger_id,
            "kind": self.kind,
            "detail": self.detail,
            "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ChargerUptime:
    """One charger's availability over a window."""

    charger_id: str
    window_start: datetime
    window_end: datetime
    observed_s: float
    """Seconds of the window the gateway was running."""
    offline_s: float
    """Seconds of the observed time the charger was down."""
    faults: int
    """Fault episodes that started in the window."""
    last_fault: Episode | None
    """The latest fault episode ever recorded."""

    @property
    def uptime_percent(self) -> float | None:
        """Share of the observed time the charger answered; None when nothing was observed."""
        if self.observed_s <= 0:
            return None
        # Divide first: with no downtime the share is exactly 1, so the percent is exactly 100.
        return max(0.0, self.observed_s - self.offline_s) / self.observed_s * 100.0

    def as_json(self) -> dict[str, Any]:
        uptime = self.uptime_percent
        return {
            "charger_id": self.charger_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "observed_s": round(self.observed_s, 3),
            "offline_s": round(self.offline_s, 3),
            "uptime_percent": None if uptime is None else round(uptime, 3),
            "faults": self.faults,
            "last_fault": None if self.last_fault is None else self.last_fault.as_json(),
        }


class ChargerHistory:
    """The episode and run records of one gateway in `store`. `await start_run()` first,
    `await stop_run()` at a clean stop."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._run_id: int | None = None

    async def start_run(self) -> None:
        """Close what an unclean stop left open (runs and episodes end at the run's last
        mark), and start a new run."""
        now = self._clock.now().isoformat()

        def write(db: sqlite3.Connection) -> int:
            for run_id, last_seen in db.execute(
                "SELECT id, last_seen FROM monitoring_runs WHERE stopped_at IS NULL"
            ).fetchall():
                db.execute(
                    "UPDATE charger_episodes SET ended_at = ? WHERE ended_at IS NULL"
                    " AND started_at <= ?",
                    (last_seen, last_seen),
                )
                db.execute(
                    "UPDATE monitoring_runs SET stopped_at = last_seen WHERE id = ?", (run_id,)
                )
            # An episode backdated past its run's last mark: it ends where it started.
            db.execute("UPDATE charger_episodes SET ended_at = started_at WHERE ended_at IS NULL")
            cursor = db.execute(
                "INSERT INTO monitoring_runs (started_at, last_seen) VALUES (?, ?)", (now, now)
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        self._run_id = await self._store.write(write)

    async def mark_alive(self) -> None:
        """Record that the gateway is still watching (see `RUN_MARK_INTERVAL_S`)."""
        run_id = self._run_id
        if run_id is None:
            return
        now = self._clock.now().isoformat()
        await self._store.write(
            lambda db: db.execute(
                "UPDATE monitoring_runs SET last_seen = ? WHERE id = ?", (now, run_id)
            )
        )

    async def stop_run(self) -> None:
        """A clean stop: open episodes and the run end now."""
        run_id, self._run_id = self._run_id, None
        if run_id is None:
            return
        now = self._clock.now().isoformat()

        def write(db: sqlite3.Connection) -> None:
            db.execute("UPDATE charger_episodes SET ended_at = ? WHERE ended_at IS NULL", (now,))
            db.execute(
                "UPDATE monitoring_runs SET stopped_at = ?, last_seen = ? WHERE id = ?",
                (now, now, run_id),
            )

        await self._store.write(write)

    async def episode_started(
        self, charger_id: str, kind: EpisodeKind, detail: str, at: datetime
    ) -> int:
        """Record the start of an episode; returns its id for `episode_ended`."""
        ids = await self._store.write(
            lambda db: self.record_episodes(db, [(charger_id, kind, detail, at)], [])
        )
        return ids[0]

    async def episode_ended(self, episode_id: int, at: datetime) -> None:
        await self._store.write(lambda db: self.record_episodes(db, [], [(episode_id, at)]))

    def record_episodes(
        self,
        db: sqlite3.Connection,
        starts: list[tuple[str, EpisodeKind, str, datetime]],
        ends: list[tuple[int, datetime]],
    ) -> list[int]:
        """Inside a caller's transaction on the store's thread (`Store.write`): end the
        episodes `ends` names (id, when), start `starts` (charger, kind, detail, when);
        returns the new episodes' ids, in order."""
        db.executemany(
            "UPDATE charger_episodes SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            [(at.isoformat(), episode_id) for episode_id, at in ends],
        )
        ids: list[int] = []
        for charger_id, kind, detail, at in starts:
            cursor = db.execute(
                "INSERT INTO charger_episodes (charger_id, kind, detail, started_at)"
                " VALUES (?, ?, ?, ?)",
                (charger_id, kind, detail, at.isoformat()),
            )
            assert cursor.lastrowid is not None
            ids.append(cursor.lastrowid)
        if (starts or ends) and self._run_id is not None:
            db.execute(
                "UPDATE monitoring_runs SET last_seen = ? WHERE id = ?",
                (self._clock.now().isoformat(), self._run_id),
            )
        return ids

    async def episodes(self, charger_id: str | None = None, limit: int = 100) -> list[Episode]:
        """The latest episodes (of one charger, or of all), newest first."""
        return await read_episodes(self._store, charger_id, limit)

    async def summary(
        self,
        charger_ids: list[str] | None = None,
        *,
        window_s: float = DEFAULT_WINDOW_S,
    ) -> list[ChargerUptime]:
        """Uptime, faults and last fault per charger over the last `window_s` seconds (every
        charger with a record when `charger_ids` is None). Raises ValueError for a window
        that is not positive."""
        return await uptime_summary(
            self._store, charger_ids, window_s=window_s, now=self._clock.now()
        )


async def read_episodes(store: Store, charger_id: str | None, limit: int) -> list[Episode]:
    """The latest episodes in `store`, newest first."""
    if charger_id is None:
        query = "SELECT * FROM charger_episodes ORDER BY started_at DESC, id DESC LIMIT ?"
        args: tuple[Any, ...] = (limit,)
    else:
        query = (
            "SELECT * FROM charger_episodes WHERE charger_id = ?"
            " ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        args = (charger_id, limit)
    return await store.read(lambda db: [_episode(row) for row in db.execute(query, args)])


async def uptime_summary(
    store: Store,
    charger_ids: list[str] | None,
    *,
    window_s: float,
    now: datetime,
) -> list[ChargerUptime]:
    """See `ChargerHistory.summary`; usable on a store without a running gateway."""
    if not window_s > 0:
        raise ValueError(f"the window must be a positive number of seconds, got {window_s}")
    start = now - timedelta(seconds=window_s)

    def read(db: sqlite3.Connection) -> tuple[list[Any], list[Any], list[str]]:
        runs = db.execute(
            "SELECT started_at, last_seen, stopped_at FROM monitoring_runs"
            " WHERE stopped_at IS NULL OR stopped_at > ?",
            (start.isoformat(),),
        ).fetchall()
        episodes = db.execute(
            "SELECT * FROM charger_episodes WHERE ended_at IS NULL OR ended_at > ?"
            " OR kind = 'fault' ORDER BY started_at",
            (start.isoformat(),),
        ).fetchall()
        known = [row[0] for row in db.execute("SELECT DISTINCT charger_id FROM charger_episodes")]
        return runs, episodes, known

    runs, episode_rows, known = await store.read(read)
    observed = [
        # A run still open is being watched now (this gateway), or ended at its last mark.
        (datetime.fromisoformat(started), now if stopped is None else _parse(stopped))
        for started, _last_seen, stopped in runs
    ]
    observed_s = sum(_overlap(a, b, start, now) for a, b in observed)
    by_charger: dict[str, list[Episode]] = {}
    for row in episode_rows:
        episode = _episode(row)
        by_charger.setdefault(episode.charger_id, []).append(episode)
    summaries: list[ChargerUptime] = []
    for charger_id in charger_ids if charger_ids is not None else sorted(known):
        episodes = by_charger.get(charger_id, [])
        offline = [
            (e.started_at, now if e.ended_at is None else e.ended_at)
            for e in episodes
            if e.kind == "offline"
        ]
        faults = [e for e in episodes if e.kind == "fault"]
        summaries.append(
            ChargerUptime(
                charger_id=charger_id,
                window_start=start,
                window_end=now,
                observed_s=observed_s,
                offline_s=min(observed_s, _union_within(offline, start, now)),
                faults=sum(1 for e in faults if e.started_at >= start),
                last_fault=max(faults, key=lambda e: e.started_at, default=None),
            )
        )
    return summaries


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _episode(row: sqlite3.Row) -> Episode:
    return Episode(
        id=row["id"],
        charger_id=row["charger_id"],
        kind=row["kind"],
        detail=row["detail"],
        started_at=_parse(row["started_at"]),
        ended_at=None if row["ended_at"] is None else _parse(row["ended_at"]),
    )


def _overlap(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    return max(0.0, (min(b, end) - max(a, start)).total_seconds())


def _union_within(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> float:
    """Seconds covered by the union of `spans` inside [start, end]."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in spans if b > start and a < end)
    total = 0.0
    current: tuple[datetime, datetime] | None = None
    for a, b in clipped:
        if current is None or a > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (a, b)
        else:
            current = (current[0], max(current[1], b))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total
