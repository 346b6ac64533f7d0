"""Charging periods from a session's meter samples.

The spec requires a new charging period whenever the price could change (mod_cdrs
"ChargingPeriod"; ocpi.md §5.2). `build_charging_periods` cuts the time between samples at
every point a restriction of the tariff could flip:

- local time-of-day boundaries named by the tariff (`start_time`, `end_time`) and local
  midnights (dates and weekdays), in the site's time zone (DST handled by `zoneinfo`);
- the session reaching a `min_duration`/`max_duration`;
- the energy crossing a `min_kwh`/`max_kwh`, at the interpolated instant (energy is taken to
  flow evenly between two samples);
- a change between charging and not charging (TIME versus PARKING_TIME);
- power or current moving across a `min_/max_power` or `min_/max_current` band.

Between two samples the earlier sample's state holds (sample and hold): its charging flag, its
power and its current describe the interval up to the next sample; the energy of the interval
is the difference of the two energy registers. The resulting pieces are then merged again
wherever the tariff prices them the same way (same active element per dimension, same
charging state), so a period is only as fine as the price needs. Every period carries ENERGY,
TIME or PARKING_TIME, and MIN/MAX_CURRENT and MIN/MAX_POWER, which is what the restrictions
compare; `gateway.tariffs.pricing` prices them.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from decimal import Decimal, localcontext
from typing import Final

from gateway.core.charger import ChargerReading
from gateway.tariffs.model import Tariff, TariffDimensionType
from gateway.tariffs.periods import CdrDimension, CdrDimensionType, ChargingPeriod
from gateway.tariffs.pricing import PRECISION, PeriodState, active_component

log = logging.getLogger("gateway.tariffs.metering")

WH_PER_KWH: Final = Decimal(1000)
W_PER_KW: Final = Decimal(1000)
SECONDS_PER_HOUR: Final = Decimal(3600)


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One reading of a charger during a session."""

    at: datetime
    """Aware."""
    energy_wh: Decimal
    """An energy register (lifetime or session-relative: only differences count)."""
    power_w: Decimal
    current_a: Decimal
    """Summed over the phases, as OCPI's current restrictions count it."""
    charging: bool
    """Energy is flowing to the vehicle (TIME); otherwise the time is PARKING_TIME."""

    @staticmethod
    def from_reading(at: datetime, reading: ChargerReading) -> MeterSample:
        """A sample from a poll of the charger: charging means control-pilot state C2/D2
        (the EVSE offers current and the vehicle draws it)."""
        return MeterSample(
            at=at,
            energy_wh=_decimal(reading.energy_wh),
            power_w=_decimal(reading.power_w),
            current_a=sum((_decimal(a) for a in reading.current_a), Decimal(0)),
            charging=reading.cp_state.charging,
        )


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@dataclass(frozen=True, slots=True)
class _Piece:
    start: datetime
    end: datetime
    energy_kwh: Decimal
    energy_before_kwh: Decimal
    charging: bool
    power_kw: Decimal
    current_a: Decimal


def build_charging_periods(
    samples: Sequence[MeterSample],
    *,
    time_zone: tzinfo,
    tariff: Tariff | None = None,
    session_start: datetime | None = None,
    tariff_id: str | None = None,
    merge: bool = True,
) -> tuple[ChargingPeriod, ...]:
    """The charging periods of a session from its samples, in time order.

    `session_start` (default: the first sample) is where duration restrictions count from.
    `tariff_id` (default: the tariff's id) goes into every period. Without a tariff, periods
    change only between charging and parking. `merge=False` keeps one period per cut piece
    (every sample interval, cut at every boundary), for audits. Fewer than two samples give
    no period. Raises `ValueError` for samples out of time order or without a time zone."""
    for sample in samples:
        if sample.at.tzinfo is None:
            raise ValueError(f"meter sample at {sample.at.isoformat()} has no time zone")
    for earlier, later in itertools.pairwise(samples):
        if later.at < earlier.at:
            raise ValueError(
                f"meter samples out of order: {later.at.isoformat()} after {earlier.at.isoformat()}"
            )
    if len(samples) < 2:
        return ()
    start = samples[0].at if session_start is None else session_start
    period_tariff_id = tariff_id if tariff_id is not None else (tariff.id if tariff else None)
    with localcontext(prec=PRECISION):
        pieces = _pieces(samples, tariff, time_zone, start)
        if not merge:
            return tuple(_period([piece], period_tariff_id) for piece in pieces)
        return tuple(_merge(pieces, tariff, time_zone, start, period_tariff_id))


def reservation_period(
    start: datetime, end: datetime, tariff_id: str | None = None
) -> ChargingPeriod:
    """The period of a reservation from `start` to `end` (RESERVATION_TIME in hours)."""
    seconds = Decimal(max(end - start, timedelta(0)) // timedelta(microseconds=1)) / 1_000_000
    return ChargingPeriod(
        start_date_time=start,
        dimensions=(CdrDimension(CdrDimensionType.RESERVATION_TIME, seconds / SECONDS_PER_HOUR),),
        tariff_id=tariff_id,
    )


def _pieces(
    samples: Sequence[MeterSample], tariff: Tariff | None, zone: tzinfo, session_start: datetime
) -> list[_Piece]:
    clocks = _clock_boundaries(tariff)
    durations = _duration_boundaries(tariff)
    energies = _energy_boundaries(tariff)
    pieces: list[_Piece] = []
    energy_so_far = Decimal(0)
    pending_wh = Decimal(0)
    """Energy of samples taken at the same instant, carried into the next interval."""
    for sample, following in itertools.pairwise(samples):
        delta = following.energy_wh - sample.energy_wh
        if delta < 0:
            # A register that went backwards (a reset or a glitch) delivered nothing here.
            log.warning(
                "energy register went backwards",
                extra={"at": following.at.isoformat(), "drop_wh": str(-delta)},
            )
            delta = Decimal(0)
        if following.at == sample.at:
            pending_wh += delta
            continue
        kwh = (delta + pending_wh) / WH_PER_KWH
        pending_wh = Decimal(0)
        # Cut instants and the cumulative energy at each: exact at kWh thresholds.
        cuts: dict[datetime, Decimal | None] = {}
        for instant in _local_boundaries(sample.at, following.at, clocks, zone):
            cuts.setdefault(instant, None)
        for seconds in durations:
            instant = session_start + timedelta(seconds=seconds)
            if sample.at < instant < following.at:
                cuts.setdefault(instant, None)
        for threshold in energies:
            if energy_so_far < threshold < energy_so_far + kwh:
                fraction = (threshold - energy_so_far) / kwh
                instant = sample.at + _scaled(following.at - sample.at, fraction)
                if sample.at < instant < following.at:
                    cuts[instant] = threshold
        points = [sample.at, *sorted(cuts), following.at]
        span = _seconds(following.at - sample.at)
        energy_at = [energy_so_far]
        for instant in points[1:-1]:
            exact = cuts[instant]
            linear = energy_so_far + kwh * _seconds(instant - sample.at) / span
            energy_at.append(max(energy_at[-1], linear if exact is None else exact))
        energy_at.append(energy_so_far + kwh)
        for index in range(len(points) - 1):
            pieces.append(
                _Piece(
                    start=points[index],
                    end=points[index + 1],
                    energy_kwh=energy_at[index + 1] - energy_at[index],
                    energy_before_kwh=energy_at[index],
                    charging=sample.charging,
                    power_kw=sample.power_w / W_PER_KW,
                    current_a=sample.current_a,
                )
            )
        energy_so_far += kwh
    if pending_wh:
        # Energy after the last interval, at its end instant: it belongs to the last piece.
        kwh = pending_wh / WH_PER_KWH
        if pieces:
            last = pieces[-1]
            pieces[-1] = dataclasses.replace(last, energy_kwh=last.energy_kwh + kwh)
        else:
            at = samples[-1]
            pieces.append(
                _Piece(
                    at.at, at.at, kwh, Decimal(0), at.charging, at.power_w / W_PER_KW, at.current_a
                )
            )
    return pieces


def _scaled(span: timedelta, fraction: Decimal) -> timedelta:
    microseconds = int(Decimal(span // timedelta(microseconds=1)) * fraction)
    return timedelta(microseconds=microseconds)


def _seconds(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / 1_000_000


def _clock_boundaries(tariff: Tariff | None) -> frozenset[time]:
    """Local times of day at which some restriction could flip (midnight: dates, weekdays)."""
    if tariff is None or not tariff.uses_local_time:
        return frozenset()
    clocks = {time(0, 0)}
    for element in tariff.elements:
        r = element.restrictions
        if r is not None:
            clocks.update(t for t in (r.start_time, r.end_time) if t is not None)
    return frozenset(clocks)


def _duration_boundaries(tariff: Tariff | None) -> frozenset[int]:
    if tariff is None:
        return frozenset()
    return frozenset(
        seconds
        for element in tariff.elements
        if element.restrictions is not None
        for seconds in (element.restrictions.min_duration, element.restrictions.max_duration)
        if seconds is not None
    )


def _energy_boundaries(tariff: Tariff | None) -> frozenset[Decimal]:
    if tariff is None:
        return frozenset()
    return frozenset(
        kwh
        for element in tariff.elements
        if element.restrictions is not None
        for kwh in (element.restrictions.min_kwh, element.restrictions.max_kwh)
        if kwh is not None
    )


def _local_boundaries(
    start: datetime, end: datetime, clocks: frozenset[time], zone: tzinfo
) -> list[datetime]:
    """The instants strictly between `start` and `end` at which the local clock shows one of
    `clocks`."""
    if not clocks:
        return []
    found: list[datetime] = []
    day = start.astimezone(zone).date()
    last_day = end.astimezone(zone).date()
    while day <= last_day:
        for clock in clocks:
            instant = datetime.combine(day, clock, tzinfo=zone)
            if start < instant < end:
                found.append(instant)
        day += timedelta(days=1)
    return found


_PRICED: Final = (
    TariffDimensionType.FLAT,
    TariffDimensionType.ENERGY,
    TariffDimensionType.TIME,
    TariffDimensionType.PARKING_TIME,
)


def _signature(
    piece: _Piece, tariff: Tariff | None, zone: tzinfo, session_start: datetime
) -> tuple[object, ...]:
    if tariff is None:
        return (piece.charging,)
    state = PeriodState(
        local=piece.start.astimezone(zone),
        energy_kwh=piece.energy_before_kwh,
        duration_s=_seconds(piece.start - session_start),
        min_current=piece.current_a,
        max_current=piece.current_a,
        min_power=piece.power_kw,
        max_power=piece.power_kw,
    )
    timed = TariffDimensionType.TIME if piece.charging else TariffDimensionType.PARKING_TIME
    chosen = []
    for dimension in _PRICED:
        if dimension in (TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME) and (
            dimension != timed
        ):
            continue
        found = active_component(tariff, dimension, state)
        chosen.append(None if found is None else found[0])
    return (piece.charging, *chosen)


def _merge(
    pieces: list[_Piece],
    tariff: Tariff | None,
    zone: tzinfo,
    session_start: datetime,
    tariff_id: str | None,
) -> list[ChargingPeriod]:
    periods: list[ChargingPeriod] = []
    run: list[_Piece] = []
    run_signature: tuple[object, ...] | None = None
    for piece in pieces:
        signature = _signature(piece, tariff, zone, session_start)
        if run and signature != run_signature:
            periods.append(_period(run, tariff_id))
            run = []
        run.append(piece)
        run_signature = signature
    if run:
        periods.append(_period(run, tariff_id))
    return periods


def _period(run: list[_Piece], tariff_id: str | None) -> ChargingPeriod:
    seconds = sum((_seconds(piece.end - piece.start) for piece in run), Decimal(0))
    timed = CdrDimensionType.TIME if run[0].charging else CdrDimensionType.PARKING_TIME
    return ChargingPeriod(
        start_date_time=run[0].start,
        dimensions=(
            CdrDimension(CdrDimensionType.ENERGY, sum((p.energy_kwh for p in run), Decimal(0))),
            CdrDimension(timed, seconds / SECONDS_PER_HOUR),
            CdrDimension(CdrDimensionType.MIN_CURRENT, min(p.current_a for p in run)),
            CdrDimension(CdrDimensionType.MAX_CURRENT, max(p.current_a for p in run)),
            CdrDimension(CdrDimensionType.MIN_POWER, min(p.power_kw for p in run)),
            CdrDimension(CdrDimensionType.MAX_POWER, max(p.power_kw for p in run)),
        ),
        tariff_id=tariff_id,
    )
