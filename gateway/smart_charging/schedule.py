"""Evaluating installed charging profiles: the limit in force at an instant, the composite
schedule over a window, and the next instant the limit may change.

Rules (1.6 §3.13, 2.0.1 K01/K08, ocpp.md §8):
- A profile is in effect at t when t is within [validFrom, validTo) and within its schedule:
  Absolute from startSchedule (else validFrom, else the moment it was installed), Recurring
  from startSchedule repeated every day or week (the pattern extends both ways from its
  anchor), Relative from the transaction's start (without a transaction it is taken as
  starting now, so its first period applies). A schedule with a duration ends after it; the
  last period of one without lasts as long as the profile is valid.
- Per purpose the in-effect profile with the highest stackLevel prevails. For TxDefaultProfile
  a profile on the connector itself outranks any on connector 0 (it replaces the station-wide
  default for that connector, ocpp.md §8). A TxProfile applies only to its own transaction; when
  none is in effect, the TxDefaultProfile applies.
- The limit is min(ChargePointMaxProfile, TxProfile or TxDefaultProfile, the charger's own
  maximum); no profile in effect means the charger's maximum (unconstrained, ocpp.md §8).
- Watts become amperes per phase at `NOMINAL_VOLTAGE_V` over the period's numberPhases, or the
  charger's own phase count when the period gives none (the spec's default of 3 presumes a
  three-phase station; for the gateway's single-phase chargers their own count is the truth).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from gateway.smart_charging.profile import (
    ChargingProfile,
    Kind,
    Purpose,
    RateUnit,
    SchedulePeriod,
)

NOMINAL_VOLTAGE_V: Final = 230.0
"""Phase-to-neutral nominal voltage of European low-voltage grids (EN 50160), used to turn a
schedule in W into amperes per phase and back."""


@dataclass(frozen=True, slots=True)
class TransactionContext:
    """The transaction a limit is evaluated for: the gateway's session id and its start."""

    session_id: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Installed:
    """A profile as installed on one charger: on which connector (0 = the whole station),
    for which session (TxProfile only), and when (the start of an Absolute schedule without
    startSchedule or validFrom)."""

    profile: ChargingProfile
    connector_id: int
    installed_at: datetime
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """The limit in force: amperes per phase, the phase count, and which purpose bound it
    (None: no profile in effect, the charger's own maximum)."""

    amps: float
    number_phases: int
    bound_by: Purpose | None


@dataclass(frozen=True, slots=True)
class CompositePeriod:
    start: datetime
    amps: float
    number_phases: int
    bound_by: Purpose | None


def schedule_origin(
    installed: Installed, at: datetime, transaction: TransactionContext | None
) -> datetime:
    """The start of the schedule (of the recurrence that contains `at`, for Recurring)."""
    profile = installed.profile
    schedule = profile.schedule
    if profile.kind is Kind.RELATIVE:
        return transaction.started_at if transaction is not None else at
    if profile.kind is Kind.RECURRING:
        assert schedule.start is not None
        assert profile.recurrency is not None
        period = profile.recurrency.period
        return schedule.start + period * ((at - schedule.start) // period)
    return schedule.start or profile.valid_from or installed.installed_at


def period_at(
    installed: Installed, at: datetime, transaction: TransactionContext | None
) -> SchedulePeriod | None:
    """The schedule period of one profile in effect at `at`, or None."""
    profile = installed.profile
    if not profile.valid_at(at):
        return None
    elapsed = at - schedule_origin(installed, at, transaction)
    if elapsed < timedelta(0):
        return None
    duration = profile.schedule.duration_s
    if duration is not None and elapsed >= timedelta(seconds=duration):
        return None
    current = None
    for period in profile.schedule.periods:
        if timedelta(seconds=period.start_s) > elapsed:
            break
        current = period
    return current


def applicable(
    entries: Iterable[Installed],
    purpose: Purpose,
    connector_id: int,
    transaction: TransactionContext | None,
) -> list[Installed]:
    """The profiles of `purpose` that can apply to `connector_id` (0: the station as a whole)."""
    out = []
    for entry in entries:
        if entry.profile.purpose is not purpose:
            continue
        if purpose is Purpose.CHARGE_POINT_MAX:
            if entry.connector_id == 0:
                out.append(entry)
        elif purpose is Purpose.TX_DEFAULT:
            if entry.connector_id in (0, connector_id):
                out.append(entry)
        elif (
            transaction is not None
            and connector_id != 0
            and entry.connector_id == connector_id
            and entry.session_id == transaction.session_id
        ):
            out.append(entry)
    return out


def prevailing(
    candidates: Sequence[Installed],
    connector_id: int,
    at: datetime,
    transaction: TransactionContext | None,
) -> tuple[Installed, SchedulePeriod] | None:
    """Of `candidates` (one purpose), the prevailing profile in effect at `at` and its period."""
    best: tuple[tuple[bool, int], Installed, SchedulePeriod] | None = None
    for entry in candidates:
        period = period_at(entry, at, transaction)
        if period is None:
            continue
        rank = (connector_id != 0 and entry.connector_id == connector_id, entry.profile.stack_level)
        if best is None or rank > best[0]:
            best = (rank, entry, period)
    return None if best is None else (best[1], best[2])


def to_amps(installed: Installed, period: SchedulePeriod, charger_phases: int) -> tuple[float, int]:
    """(amperes per phase, phases) of one period."""
    phases = period.number_phases or charger_phases
    if installed.profile.schedule.unit is RateUnit.AMPS:
        return period.limit, phases
    return period.limit / (NOMINAL_VOLTAGE_V * phases), phases


def limit_at(
    entries: Iterable[Installed],
    at: datetime,
    *,
    connector_id: int,
    transaction: TransactionContext | None,
    charger_phases: int,
    max_current_a: float,
) -> Limit:
    """The limit in force at `at` on `connector_id` (see the module docstring)."""
    entries = list(entries)
    amps, phases, bound_by = max_current_a, charger_phases, None
    purposes = [Purpose.CHARGE_POINT_MAX]
    tx = prevailing(applicable(entries, Purpose.TX, connector_id, transaction), 0, at, transaction)
    if tx is None:
        purposes.append(Purpose.TX_DEFAULT)
    found = [] if tx is None else [(Purpose.TX, tx)]
    for purpose in purposes:
        chosen = prevailing(
            applicable(entries, purpose, connector_id, transaction), connector_id, at, transaction
        )
        if chosen is not None:
            found.append((purpose, chosen))
    for purpose, (entry, period) in found:
        value, period_phases = to_amps(entry, period, charger_phases)
        if value <= amps:  # a profile at the charger's maximum still counts as in force
            amps, bound_by = value, purpose
        phases = min(phases, period_phases)
    return Limit(amps, phases, bound_by)


def boundaries(
    entries: Iterable[Installed],
    start: datetime,
    end: datetime,
    transaction: TransactionContext | None,
) -> list[datetime]:
    """Every instant in (start, end) at which some profile's state may change, sorted."""
    found: set[datetime] = set()
    for entry in entries:
        found.update(_profile_boundaries(entry, start, end, transaction))
    return sorted(t for t in found if start < t < end)


def _profile_boundaries(
    installed: Installed,
    start: datetime,
    end: datetime,
    transaction: TransactionContext | None,
) -> Iterator[datetime]:
    profile = installed.profile
    if profile.valid_from is not None:
        yield profile.valid_from
    if profile.valid_to is not None:
        yield profile.valid_to
    if profile.kind is Kind.RELATIVE and transaction is None:
        return  # starts "now" wherever it is evaluated: constant
    if profile.kind is Kind.RECURRING:
        assert profile.schedule.start is not None
        assert profile.recurrency is not None
        period = profile.recurrency.period
        first = (start - profile.schedule.start) // period
        last = (end - profile.schedule.start) // period
        origins = [profile.schedule.start + period * k for k in range(first, last + 1)]
    else:
        origins = [schedule_origin(installed, start, transaction)]
    for origin in origins:
        yield origin
        for schedule_period in profile.schedule.periods:
            yield origin + timedelta(seconds=schedule_period.start_s)
        if profile.schedule.duration_s is not None:
            yield origin + timedelta(seconds=profile.schedule.duration_s)


def composite(
    entries: Iterable[Installed],
    start: datetime,
    duration: timedelta,
    *,
    connector_id: int,
    transaction: TransactionContext | None,
    charger_phases: int,
    max_current_a: float,
) -> list[CompositePeriod]:
    """The composite schedule over [start, start + duration): one period per change of the
    limit, the first at `start`. The limit at any instant of a period equals `limit_at`."""
    entries = list(entries)
    periods: list[CompositePeriod] = []
    for at in [start, *boundaries(entries, start, start + duration, transaction)]:
        limit = limit_at(
            entries,
            at,
            connector_id=connector_id,
            transaction=transaction,
            charger_phases=charger_phases,
            max_current_a=max_current_a,
        )
        if periods and (periods[-1].amps, periods[-1].number_phases) == (
            limit.amps,
            limit.number_phases,
        ):
            continue
        periods.append(CompositePeriod(at, limit.amps, limit.number_phases, limit.bound_by))
    return periods


def next_boundary(
    entries: Iterable[Installed],
    after: datetime,
    horizon: timedelta,
    transaction: TransactionContext | None,
) -> datetime | None:
    """The first instant after `after`, within `horizon`, at which the limit may change."""
    found = boundaries(entries, after, after + horizon, transaction)
    return found[0] if found else None
