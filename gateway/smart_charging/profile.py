"""The charging profile model (OCPP 1.6 §3.13 / 2.0.1 block K), parsed from either version's
JSON into one form, and written back in either version's form.

Parsing is strict where the evaluation depends on a field (a first period that does not start
at 0, periods out of order, a Recurring profile without a recurrency or a start, a negative
limit) and says which field is wrong: `ProfileError`. Fields the evaluation does not use are
kept as received where a report needs them (`minChargingRate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

JsonObject = dict[str, Any]


class ProfileError(ValueError):
    """A charging profile the gateway cannot install; the message names the field."""


class Purpose(StrEnum):
    """ChargingProfilePurposeType; the 2.0.1 station-wide name maps to the 1.6 one."""

    CHARGE_POINT_MAX = "ChargePointMaxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


PURPOSE_201: Final[dict[Purpose, str]] = {
    Purpose.CHARGE_POINT_MAX: "ChargingStationMaxProfile",
    Purpose.TX_DEFAULT: "TxDefaultProfile",
    Purpose.TX: "TxProfile",
}
_PURPOSE_FROM_201: Final = {name: purpose for purpose, name in PURPOSE_201.items()}


class Kind(StrEnum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


class Recurrency(StrEnum):
    DAILY = "Daily"
    WEEKLY = "Weekly"

    @property
    def period(self) -> timedelta:
        return timedelta(days=1) if self is Recurrency.DAILY else timedelta(days=7)


class RateUnit(StrEnum):
    AMPS = "A"
    WATTS = "W"


DEFAULT_NUMBER_PHASES: Final = 3
"""Both versions: a period without numberPhases means three phases."""


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    start_s: int
    """Seconds from the schedule's start (startPeriod)."""
    limit: float
    """In the schedule's unit: amperes per phase, or watts in total."""
    number_phases: int | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    unit: RateUnit
    periods: tuple[SchedulePeriod, ...]
    """Ordered by `start_s`; the first starts at 0."""
    duration_s: int | None = None
    """None: the last period lasts for ever (within the profile's validity)."""
    start: datetime | None = None
    """startSchedule: required for Recurring, optional for Absolute, ignored for Relative."""
    min_charging_rate: float | None = None
    """Kept for reports; the gateway's chargers do not take it into account."""
    schedule_id: int | None = None
    """2.0.1 chargingSchedule.id (reported back as received)."""


@dataclass(frozen=True, slots=True)
class ChargingProfile:
    """One installed profile. `transaction_id` is the upstream transaction a TxProfile belongs
    to (the 1.6 transactionId as text, or the 2.0.1 transactionId)."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    recurrency: Recurrency | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = None

    def valid_at(self, at: datetime) -> bool:
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_to is None or at < self.valid_to


def parse_time(value: Any, field: str) -> datetime:
    """An OCPP dateTime (RFC 3339; a missing offset is taken as UTC)."""
    if not isinstance(value, str):
        raise ProfileError(f"{field}: expected a date-time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProfileError(f"{field}: not an RFC 3339 date-time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _integer(payload: JsonObject, key: str, where: str, *, minimum: int | None = None) -> int:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{where}{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ProfileError(f"{where}{key}: must be at least {minimum}, got {value}")
    return value


def _enum(enum: type[StrEnum], value: Any, field: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ProfileError(f"{field}: {value!r} is not one of {allowed}") from None


def _schedule(payload: Any, where: str) -> Schedule:
    if not isinstance(payload, dict):
        raise ProfileError(f"{where}: expected an object")
    unit = _enum(RateUnit, payload.get("chargingRateUnit"), f"{where}.chargingRateUnit")
    raw_periods = payload.get("chargingSchedulePeriod")
    if not isinstance(raw_periods, list) or not raw_periods:
        raise ProfileError(f"{where}.chargingSchedulePeriod: at least one period is required")
    periods: list[SchedulePeriod] = []
    for index, raw in enumerate(raw_periods):
        at = f"{where}.chargingSchedulePeriod[{index}]."
        if not isinstance(raw, dict):
            raise ProfileError(f"{at[:-1]}: expected an object")
        start = _integer(raw, "startPeriod", at, minimum=0)
        limit = raw.get("limit")
        if not isinstance(limit, int | float) or isinstance(limit, bool):
            raise ProfileError(f"{at}limit: expected a number, got {limit!r}")
        if not math.isfinite(limit):
            raise ProfileError(f"{at}limit: expected a number, got {limit!r}")
        if limit < 0:
            raise ProfileError(f"{at}limit: must not be negative, got {limit}")
        phases = raw.get("numberPhases")
        if phases is not None and (isinstance(phases, bool) or phases not in (1, 2, 3)):
            raise ProfileError(f"{at}numberPhases: must be 1, 2 or 3, got {phases!r}")
        if index == 0 and start != 0:
            raise ProfileError(f"{at}startPeriod: the first period must start at 0, got {start}")
        if periods and start <= periods[-1].start_s:
            raise ProfileError(
                f"{at}startPeriod: periods must be in increasing order"
                f" ({start} after {periods[-1].start_s})"
            )
        periods.append(SchedulePeriod(start, float(limit), phases))
    duration = None
    if payload.get("duration") is not None:
        duration = _integer(payload, "duration", f"{where}.", minimum=0)
    start_schedule = None
    if payload.get("startSchedule") is not None:
        start_schedule = parse_time(payload["startSchedule"], f"{where}.startSchedule")
    minimum_rate = payload.get("minChargingRate")
    if minimum_rate is not None and (
        isinstance(minimum_rate, bool) or not isinstance(minimum_rate, int | float)
    ):
        raise ProfileError(f"{where}.minChargingRate: expected a number, got {minimum_rate!r}")
    schedule_id = payload.get("id")
    return Schedule(
        unit=unit,
        periods=tuple(periods),
        duration_s=duration,
        start=start_schedule,
        min_charging_rate=None if minimum_rate is None else float(minimum_rate),
        schedule_id=schedule_id if isinstance(schedule_id, int) else None,
    )


def _common(
    payload: Any, purpose: Purpose, schedule: Schedule, id_key: str, transaction: str | None
) -> ChargingProfile:
    assert isinstance(payload, dict)
    kind = _enum(Kind, payload.get("chargingProfileKind"), "chargingProfileKind")
    recurrency = None
    if payload.get("recurrencyKind") is not None:
        recurrency = _enum(Recurrency, payload["recurrencyKind"], "recurrencyKind")
    if kind is Kind.RECURRING:
        if recurrency is None:
            raise ProfileError("recurrencyKind: required for a Recurring profile")
        if schedule.start is None:
            raise ProfileError("chargingSchedule.startSchedule: required for a Recurring profile")
    valid_from = parse_time(payload["validFrom"], "validFrom") if payload.get("validFrom") else None
    valid_to = parse_time(payload["validTo"], "validTo") if payload.get("validTo") else None
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ProfileError("validTo: must be after validFrom")
    if purpose is not Purpose.TX and transaction is not None:
        raise ProfileError("transactionId: only a TxProfile belongs to a transaction")
    return ChargingProfile(
        id=_integer(payload, id_key, ""),
        stack_level=_integer(payload, "stackLevel", "", minimum=0),
        purpose=purpose,
        kind=kind,
        schedule=schedule,
        recurrency=recurrency,
        valid_from=valid_from,
        valid_to=valid_to,
        transaction_id=transaction,
    )


def parse_profile_16(payload: Any) -> ChargingProfile:
    """A 1.6 `csChargingProfiles` object. Raises `ProfileError`."""
    if not isinstance(payload, dict):
        raise ProfileError("csChargingProfiles: expected an object")
    purpose = _enum(Purpose, payload.get("chargingProfilePurpose"), "chargingProfilePurpose")
    schedule = _schedule(payload.get("chargingSchedule"), "chargingSchedule")
    transaction = payload.get("transactionId")
    return _common(
        payload,
        purpose,
        schedule,
        "chargingProfileId",
        None if transaction is None else str(transaction),
    )


def parse_profile_201(payload: Any) -> ChargingProfile:
    """A 2.0.1 `chargingProfile` object. Only one chargingSchedule is taken: more are ISO 15118
    schedule offers, which the gateway's chargers cannot make. Raises `ProfileError`."""
    if not isinstance(payload, dict):
        raise ProfileError("chargingProfile: expected an object")
    raw_purpose = payload.get("chargingProfilePurpose")
    if raw_purpose not in _PURPOSE_FROM_201:
        allowed = ", ".join(_PURPOSE_FROM_201)
        raise ProfileError(f"chargingProfilePurpose: {raw_purpose!r} is not one of {allowed}")
    purpose = _PURPOSE_FROM_201[raw_purpose]
    schedules = payload.get("chargingSchedule")
    if not isinstance(schedules, list) or not schedules:
        raise ProfileError("chargingSchedule: at least one schedule is required")
    if len(schedules) > 1:
        raise ProfileError("chargingSchedule: only one schedule is supported (no ISO 15118)")
    schedule = _schedule(schedules[0], "chargingSchedule[0]")
    transaction = payload.get("transactionId")
    profile = _common(
        payload, purpose, schedule, "id", None if transaction is None else str(transaction)
    )
    if purpose is Purpose.CHARGE_POINT_MAX and profile.kind is Kind.RELATIVE:
        raise ProfileError("chargingProfileKind: a ChargingStationMaxProfile cannot be Relative")
    return profile


def _schedule_json(schedule: Schedule, *, v201: bool) -> JsonObject:
    periods: list[JsonObject] = []
    for period in schedule.periods:
        entry: JsonObject = {"startPeriod": period.start_s, "limit": period.limit}
        if period.number_phases is not None:
            entry["numberPhases"] = period.number_phases
        periods.append(entry)
    out: JsonObject = {"chargingRateUnit": schedule.unit.value, "chargingSchedulePeriod": periods}
    if v201:
        out["id"] = schedule.schedule_id if schedule.schedule_id is not None else 0
    if schedule.duration_s is not None:
        out["duration"] = schedule.duration_s
    if schedule.start is not None:
        out["startSchedule"] = format_time(schedule.start)
    if schedule.min_charging_rate is not None:
        out["minChargingRate"] = schedule.min_charging_rate
    return out


def profile_json(profile: ChargingProfile, *, v201: bool) -> JsonObject:
    """The profile in 1.6 (`csChargingProfiles`) or 2.0.1 (`chargingProfile`) form."""
    out: JsonObject = {
        "id" if v201 else "chargingProfileId": profile.id,
        "stackLevel": profile.stack_level,
        "chargingProfilePurpose": PURPOSE_201[profile.purpose] if v201 else profile.purpose.value,
        "chargingProfileKind": profile.kind.value,
    }
    if profile.recurrency is not None:
        out["recurrencyKind"] = profile.recurrency.value
    if profile.valid_from is not None:
        out["validFrom"] = format_time(profile.valid_from)
    if profile.valid_to is not None:
        out["validTo"] = format_time(profile.valid_to)
    if profile.transaction_id is not None:
        if v201:
            out["transactionId"] = profile.transaction_id
        elif profile.transaction_id.lstrip("-").isdigit():
            out["transactionId"] = int(profile.transaction_id)
    schedule = _schedule_json(profile.schedule, v201=v201)
    out["chargingSchedule"] = [schedule] if v201 else schedule
    return out
