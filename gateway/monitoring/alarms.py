"""Alarms: conditions an operator must hear of, raised and cleared as the site changes.

`AlarmMonitor` runs as a task of the gateway (`gateway.alarms`) and evaluates, every
`[monitoring] check_interval_s`:

- **charger_offline**: a charger has not answered for `charger_offline_grace_s`;
- **charger_fault**: a charger reports a fault (a vendor code, an OCPP error code, or pilot
  state E/F); a different code is a new alarm;
- **circuit_near_limit**: a circuit carries more than `circuit_alarm_share` of its fuse's
  limit on a phase (cleared below `circuit_clear_share`, so a load hovering at the threshold
  does not flap);
- **uplink_lost**: a station has been disconnected from the central system for
  `uplink_grace_s`;
- **queue_growing**: a station's OCPP offline queue holds more than `queue_alarm_threshold`
  messages (cleared at half of it).

Each alarm is logged once when raised and once when cleared, with its fields, and written
to the store both times. Offline and fault alarms are also the charger's uptime and fault
history (`gateway.monitoring.history`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from gateway.balancing.topology import GRID_PHASE_NAMES
from gateway.config import MonitoringSection
from gateway.core.charger import OcppErrorCode
from gateway.core.clock import Clock, SystemClock
from gateway.core.tasks import raise_if_cancelling
from gateway.monitoring.circuit_load import CircuitLoads
from gateway.monitoring.history import RUN_MARK_INTERVAL_S, ChargerHistory, EpisodeKind
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)


class AlarmKind(StrEnum):
    CHARGER_OFFLINE = "charger_offline"
    CHARGER_FAULT = "charger_fault"
    CIRCUIT_NEAR_LIMIT = "circuit_near_limit"
    UPLINK_LOST = "uplink_lost"
    QUEUE_GROWING = "queue_growing"


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


SEVERITY: Final = {
    AlarmKind.CHARGER_OFFLINE: Severity.WARNING,
    AlarmKind.CHARGER_FAULT: Severity.ERROR,
    AlarmKind.CIRCUIT_NEAR_LIMIT: Severity.CRITICAL,
    AlarmKind.UPLINK_LOST: Severity.WARNING,
    AlarmKind.QUEUE_GROWING: Severity.WARNING,
}
"""Each kind's severity: a fuse about to trip is critical (a site goes dark), a charger's
fault an error (a driver cannot charge there), the rest warnings (the gateway copes:
polls go on, messages wait in the durable queue)."""
_LOG_LEVELS: Final = {
    Severity.WARNING: logging.WARNING,
    Severity.ERROR: logging.ERROR,
    Severity.CRITICAL: logging.CRITICAL,
}
_EPISODES: Final[dict[AlarmKind, EpisodeKind]] = {
    AlarmKind.CHARGER_OFFLINE: "offline",
    AlarmKind.CHARGER_FAULT: "fault",
}


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm, from raised to cleared (`cleared_at` None while active)."""

    id: str
    kind: AlarmKind
    source: str
    """The charger, circuit or station it is about."""
    severity: Severity
    message: str
    raised_at: datetime
    cleared_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "source": self.source,
            "severity": str(self.severity),
            "message": self.message,
            "raised_at": self.raised_at.isoformat(),
            "cleared_at": None if self.cleared_at is None else self.cleared_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class _Condition:
    kind: AlarmKind
    source: str
    message: str
    detail: str
    """What makes it the same alarm (a fault code): a change raises a new one."""
    since: datetime


_Key = tuple[AlarmKind, str]


class AlarmMonitor:
    """Raises and clears the gateway's alarms; see the module docstring. `run()` until
    cancelled; `active()` and `history()` any time."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        history: ChargerHistory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._gateway = gateway
        self.settings: MonitoringSection = gateway.config.monitoring
        self.charger_history = history
        self._store: Store = gateway.store
        self._clock: Clock = clock or SystemClock()
        self._loads = CircuitLoads(gateway.config)
        self._active: dict[_Key, tuple[Alarm, _Condition]] = {}
        self._history: deque[Alarm] = deque(maxlen=self.settings.alarm_history)
        self._episodes: dict[_Key, int] = {}
        self._offline_since: dict[str, tuple[float, datetime]] = {}
        self._uplink_down_since: dict[str, tuple[float, datetime]] = {}
        self._last_mark = self._clock.monotonic()

    # --- queries -----------------------------------------------------------------------

    def active(self) -> list[Alarm]:
        """The alarms raised and not cleared, oldest first."""
        return sorted((alarm for alarm, _ in self._active.values()), key=lambda a: a.raised_at)

    def history(self, limit: int = 100) -> list[Alarm]:
        """The latest alarms, active and cleared, newest first (at most `limit`; the
        store keeps them all)."""
        if limit <= 0:
            return []
        return list(self._history)[-limit:][::-1]

    # --- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Load the history, then evaluate every `check_interval_s` until cancelled. A
        failing evaluation is logged, never fatal. At the end, the run's history closes."""
        await self._start()
        try:
            while True:
                raise_if_cancelling()
                try:
                    await self.check()
                except Exception:
                    logger.exception("alarm check failed")
                await asyncio.sleep(self.settings.check_interval_s)
        finally:
            if self.charger_history is not None:
                with contextlib.suppress(Exception):
                    await self.charger_history.stop_run()

    async def _start(self) -> None:
        now = self._clock.now()
        now_text = now.isoformat()
        limit = self.settings.alarm_history

        def write(db: sqlite3.Connection) -> list[sqlite3.Row]:
            # Alarms left active by the last run are re-evaluated from scratch: end them.
            db.execute(
                "UPDATE monitoring_alarms SET cleared_at = ? WHERE cleared_at IS NULL",
                (now_text,),
            )
            return db.execute(
                "SELECT * FROM monitoring_alarms ORDER BY raised_at DESC LIMIT ?", (limit,)
            ).fetchall()

        try:
            rows = await self._store.write(write)
            if self.charger_history is not None:
                await self.charger_history.start_run()
        except Exception:
            logger.exception("could not load the alarm history")
            rows = []
        for row in reversed(rows):
            self._history.append(_alarm_from_row(row))
        started = (self._clock.monotonic(), now)
        for station_id in self._station_ids():
            self._uplink_down_since[station_id] = started

    async def check(self) -> None:
        """Evaluate every condition once; raise and clear alarms accordingly."""
        conditions = self._conditions()
        cleared: list[tuple[_Key, Alarm]] = []
        for key, (alarm, condition) in list(self._active.items()):
            current = conditions.get(key)
            if current is None or current.detail != condition.detail:
                cleared.append((key, self._clear(key, alarm)))
        raised = [
            (key, self._raise(key, condition), condition)
            for key, condition in conditions.items()
            if key not in self._active
        ]
        if raised or cleared:
            await self._record(raised, cleared)
        if (
            self.charger_history is not None
            and self._clock.monotonic() - self._last_mark >= RUN_MARK_INTERVAL_S
        ):
            self._last_mark = self._clock.monotonic()
            try:
                await self.charger_history.mark_alive()
            except Exception:
                logger.exception("could not mark the monitoring run")

    # --- conditions --------------------------------------------------------------------

    def _station_ids(self) -> list[str]:
        gateway = self._gateway
        return [*gateway.stations, *gateway.stations_201]

    def _conditions(self) -> dict[_Key, _Condition]:
        gateway = self._gateway
        settings = self.settings
        mono = self._clock.monotonic()
        wall = self._clock.now()
        found: dict[_Key, _Condition] = {}

        def add(condition: _Condition) -> None:
            found[(condition.kind, condition.source)] = condition

        for charger_id in gateway.site.charger_ids:
            connector = gateway.site.connector(charger_id)
            if connector.status is not None and not connector.online:
                since = self._offline_since.setdefault(charger_id, (mono, wall))
                if mono - since[0] >= settings.charger_offline_grace_s:
                    add(
                        _Condition(
                            AlarmKind.CHARGER_OFFLINE,
                            charger_id,
                            f"charger {charger_id} has not answered since"
                            f" {since[1].isoformat(timespec='seconds')}",
                            "",
                            since[1],
                        )
                    )
                fault_key = (AlarmKind.CHARGER_FAULT, charger_id)
                if fault_key in self._active:
                    # Offline tells nothing about the fault: it stays as it was.
                    add(self._active[fault_key][1])
                continue
            self._offline_since.pop(charger_id, None)
            reading = connector.reading
            if reading is None:
                continue
            ocpp_code = reading.ocpp_error_code
            if not (
                reading.error_code != 0
                or ocpp_code is not OcppErrorCode.NO_ERROR
                or reading.cp_state.faulted
            ):
                continue
            if ocpp_code is OcppErrorCode.NO_ERROR:
                ocpp_code = OcppErrorCode.OTHER_ERROR
            detail = f"{ocpp_code} (vendor code {reading.error_code}, pilot {reading.cp_state})"
            add(
                _Condition(
                    AlarmKind.CHARGER_FAULT,
                    charger_id,
                    f"charger {charger_id} reports a fault: {detail}",
                    detail,
                    wall,
                )
            )

        stations = {**gateway.stations, **gateway.stations_201}
        for station_id, station in stations.items():
            if station.connection.connected:
                self._uplink_down_since.pop(station_id, None)
            else:
                since = self._uplink_down_since.setdefault(station_id, (mono, wall))
                if mono - since[0] >= settings.uplink_grace_s:
                    add(
                        _Condition(
                            AlarmKind.UPLINK_LOST,
                            station_id,
                            f"station {station_id} has been disconnected from the central"
                            f" system since {since[1].isoformat(timespec='seconds')}",
                            "",
                            since[1],
                        )
                    )
            try:
                depth = len(station.outbox)
            except RuntimeError:  # not running yet
                continue
            key = (AlarmKind.QUEUE_GROWING, station_id)
            threshold = settings.queue_alarm_threshold
            if depth > threshold or (key in self._active and depth > threshold // 2):
                add(
                    _Condition(
                        AlarmKind.QUEUE_GROWING,
                        station_id,
                        f"station {station_id} has {depth} OCPP messages queued"
                        f" (alarm above {threshold})",
                        "",
                        wall,
                    )
                )

        if self._loads.circuits:
            for load in self._loads.read(gateway.site, gateway.southbound.meters):
                share, phase = load.worst_share()
                key = (AlarmKind.CIRCUIT_NEAR_LIMIT, load.circuit_id)
                share_limit = (
                    settings.circuit_clear_share
                    if key in self._active
                    else settings.circuit_alarm_share
                )
                if share >= share_limit:
                    add(
                        _Condition(
                            AlarmKind.CIRCUIT_NEAR_LIMIT,
                            load.circuit_id,
                            f"circuit {load.circuit_id} carries {load.measured_a[phase]:.1f} A"
                            f" on {GRID_PHASE_NAMES[phase]}, {share:.0%} of its"
                            f" {load.limit_a[phase]:g} A limit"
                            f" ({'metered' if load.metered else 'sum of its chargers'})",
                            "",
                            wall,
                        )
                    )
        return found

    # --- transitions -------------------------------------------------------------------

    def _raise(self, key: _Key, condition: _Condition) -> Alarm:
        alarm = Alarm(
            id=uuid.uuid4().hex,
            kind=condition.kind,
            source=condition.source,
            severity=SEVERITY[condition.kind],
            message=condition.message,
            raised_at=condition.since,
        )
        self._active[key] = (alarm, condition)
        self._history.append(alarm)
        logger.log(
            _LOG_LEVELS[alarm.severity],
            "alarm raised: %s",
            alarm.message,
            extra={"alarm": alarm.as_json()},
        )
        return alarm

    def _clear(self, key: _Key, alarm: Alarm) -> Alarm:
        cleared = replace(alarm, cleared_at=self._clock.now())
        del self._active[key]
        # Its history entry becomes the cleared version, in place.
        for index, entry in enumerate(self._history):
            if entry.id == alarm.id:
                self._history[index] = cleared
                break
        logger.info("alarm cleared: %s", alarm.message, extra={"alarm": cleared.as_json()})
        return cleared

    async def _record(
        self,
        raised: list[tuple[_Key, Alarm, _Condition]],
        cleared: list[tuple[_Key, Alarm]],
    ) -> None:
        """Write one check's transitions in one transaction: after a power cut every charger
        goes offline at once, and a commit each (an fsync on an SD card) would take
        minutes for a thousand chargers."""
        history = self.charger_history
        inserts = [alarm.as_json() for _, alarm, _ in raised]
        clears = [(alarm.as_json()["cleared_at"], alarm.id) for _, alarm in cleared]
        ends: list[tuple[int, datetime]] = []
        for key, alarm in cleared:
            episode_id = self._episodes.pop(key, None)
            if episode_id is not None and alarm.cleared_at is not None:
                ends.append((episode_id, alarm.cleared_at))
        starts: list[tuple[_Key, EpisodeKind, str, datetime]] = [
            (key, _EPISODES[alarm.kind], condition.detail, alarm.raised_at)
            for key, alarm, condition in raised
            if alarm.kind in _EPISODES and history is not None
        ]

        def write(db: sqlite3.Connection) -> list[int]:
            db.executemany(
                "INSERT INTO monitoring_alarms (id, kind, source, severity, message, raised_at)"
                " VALUES (:id, :kind, :source, :severity, :message, :raised_at)",
                inserts,
            )
            db.executemany("UPDATE monitoring_alarms SET cleared_at = ? WHERE id = ?", clears)
            if history is None:
                return []
            return history.record_episodes(
                db, [(key[1], kind, detail, at) for key, kind, detail, at in starts], ends
            )

        try:
            episode_ids = await self._store.write(write)
        except Exception:
            logger.exception(
                "could not record alarms",
                extra={"raised": len(raised), "cleared": len(cleared)},
            )
            return
        for (key, _, _, _), episode_id in zip(starts, episode_ids, strict=True):
            self._episodes[key] = episode_id


async def read_alarms(store: Store, limit: int) -> list[Alarm]:
    """The latest alarms recorded in `store`, newest first (for a bundle built without a
    running gateway)."""
    rows = await store.read(
        lambda db: db.execute(
            "SELECT * FROM monitoring_alarms ORDER BY raised_at DESC LIMIT ?", (limit,)
        ).fetchall()
    )
    return [_alarm_from_row(row) for row in rows]


def _alarm_from_row(row: sqlite3.Row) -> Alarm:
    return Alarm(
        id=row["id"],
        kind=AlarmKind(row["kind"]),
        source=row["source"],
        severity=Severity(row["severity"]),
        message=row["message"],
        raised_at=datetime.fromisoformat(row["raised_at"]),
        cleared_at=None if row["cleared_at"] is None else datetime.fromisoformat(row["cleared_at"]),
    )
