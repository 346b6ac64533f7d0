"""The price of a session from its charging periods, by the OCPI 2.2.1 tariff rules.

How a price is found (mod_tariffs, ocpi.md §5; the choices the spec leaves open are marked):

- **Element choice, per dimension.** For each period and each dimension (ENERGY, TIME,
  PARKING_TIME, FLAT) the first element in list order that has a component of that dimension
  and whose restrictions all hold at the period's start prices it. Different dimensions may
  come from different elements; no match means that dimension is free in that period.
- **Restrictions** are evaluated at the start of a period (the spec requires a new period at
  every restriction boundary; `gateway.tariffs.metering` cuts them so). Times, dates and
  weekdays are local to the site (`time_zone`). `end_time` before `start_time` wraps past
  midnight; equal times mean the whole day. Lower bounds are inclusive and upper bounds
  exclusive, for every pair: `start_time`/`end_time`, `start_date`/`end_date` (as the spec
  words them), `min_kwh`/`max_kwh` (energy charged before the period), `min_duration`/
  `max_duration` (as the spec words them; seconds since the session started), and
  `min_/max_current`, `min_/max_power` (our choice, so that the spec's complex example with
  `max_current` 32 then `min_current` 32 leaves no gap and no overlap). A current or power
  restriction compares the period's MIN_* dimension (for min_*) or MAX_* dimension (for max_*),
  falling back to CURRENT/POWER; a period that carries none of them does not match it.
- **Reservations.** A period with RESERVATION_TIME is a reservation period: only elements with
  a `reservation` restriction price it (TIME per hour reserved, FLAT once), and only they do;
  elements without one price the charging session. RESERVATION_EXPIRES elements apply only to
  a reservation that expired without a session, and there they come before RESERVATION ones
  (the spec's note on both having TIME components).
- **FLAT** is billed once for the session, by the first period in which a FLAT component is
  active (and once for a reservation, likewise).
- **step_size** (2.2.1 d2 rule): once per session for ENERGY, and once for the time-based
  dimensions together: the total of the dimension of the last period with a time-based price
  (TIME or PARKING_TIME) is rounded up to that component's step, and only the extra is billed,
  at that last period's price; the other time dimension is not rounded (charging followed by
  parking rounds only the parking). Reservation time is rounded likewise on its own. A step
  of 0 or 1 means no rounding.
- **VAT** per component: incl = excl * (1 + vat/100). A component without `vat` ("no VAT
  applicable", not 0 %) that bills a non-zero amount leaves the including-VAT figures unknown
  (None), as the spec's "first kWh free" example says.
- **min_price/max_price** bound `total_cost`, excluding and including VAT separately (both
  apply). The parts (`total_energy_cost`, ...) stay as computed.
- **Rounding** (left to the CPO by the spec): all arithmetic is exact `Decimal` (60 digits of
  precision, time in seconds and energy in kWh until the final division by 3600); only the
  reported prices are rounded, each from its exact value, half up, to the currency's minor
  unit (ISO 4217; 2 unless listed in `MINOR_UNITS`) or to `decimals` when given. A rounded
  total may thus differ by one minor unit from the sum of the rounded parts. `lines` keep the
  exact amounts.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final

from gateway.tariffs.model import (
    DayOfWeek,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    json_number,
)
from gateway.tariffs.periods import CdrDimensionType, ChargingPeriod

PRECISION: Final = 60
"""Significant digits of every intermediate result: far beyond any amount a session reaches,
so nothing is rounded before the final prices."""
SECONDS_PER_HOUR: Final = Decimal(3600)
WH_PER_KWH: Final = Decimal(1000)
SECOND_RESOLUTION: Final = Decimal("0.000001")
"""Hour volumes become seconds at microsecond resolution: hours of 1/3600 granularity are
not exact decimals, and without this 600 s could come back as 600.000…01 s and cost a step."""
STEP_RESOLUTION: Final = Decimal("0.000001")
"""Steps are counted in µWh and µs."""

MINOR_UNITS: Final[dict[str, int]] = {
    # ISO 4217 currencies whose minor unit is not 1/100 (the ISO 4217 list, "Minor unit").
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def minor_unit(currency: str) -> int:
    """Decimals of the currency's minor unit (ISO 4217): 2 unless listed in MINOR_UNITS."""
    return MINOR_UNITS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class CostLine:
    """One dimension billed in one period, exact."""

    period: int
    """Index of the period in the list given."""
    dimension: TariffDimensionType
    reservation: bool
    """Billed for reservation time (TIME) or as the reservation's FLAT."""
    element: int
    """Index of the tariff element whose component priced it."""
    component: PriceComponent
    quantity: Decimal
    """Used: kWh (ENERGY), seconds (TIME, PARKING_TIME, reservation TIME), 1 (FLAT)."""
    billed: Decimal
    """quantity plus the step_size extra, when this is the line that carries it."""
    excl_vat: Decimal
    incl_vat: Decimal | None


@dataclass(frozen=True, slots=True)
class CdrCost:
    """A session's cost, as the CDR (and Session.total_cost) report it. Prices are rounded
    (see the module docstring); volumes are exact: kWh and hours."""

    currency: str
    total_cost: Price
    total_fixed_cost: Price
    total_energy: Decimal
    total_energy_cost: Price
    total_time: Decimal
    """Hours of the session, charging and not charging (TIME + PARKING_TIME)."""
    total_time_cost: Price
    total_parking_time: Decimal
    total_parking_cost: Price
    total_reservation_cost: Price
    lines: tuple[CostLine, ...]
    min_price_applied: bool = False
    max_price_applied: bool = False

    def to_ocpi(self) -> dict[str, Any]:
        """The CDR's cost and total fields, OCPI JSON form."""
        return {
            "currency": self.currency,
            "total_cost": self.total_cost.to_ocpi(),
            "total_fixed_cost": self.total_fixed_cost.to_ocpi(),
            "total_energy": json_number(_volume(self.total_energy)),
            "total_energy_cost": self.total_energy_cost.to_ocpi(),
            "total_time": json_number(_volume(self.total_time)),
            "total_time_cost": self.total_time_cost.to_ocpi(),
            "total_parking_time": json_number(_volume(self.total_parking_time)),
            "total_parking_cost": self.total_parking_cost.to_ocpi(),
            "total_reservation_cost": self.total_reservation_cost.to_ocpi(),
        }


def _volume(value: Decimal) -> Decimal:
    return value.quantize(Decimal("1E-6"), ROUND_HALF_UP).normalize()


@dataclass(frozen=True, slots=True)
class PeriodState:
    """What restrictions are evaluated against, at the start of one period."""

    local: datetime
    """The period's start in the site's local time."""
    energy_kwh: Decimal
    """Energy charged in the session before this period."""
    duration_s: Decimal
    """Seconds since the session (or the reservation) started."""
    reservation: bool = False
    reservation_expired: bool = False
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None


def restrictions_hold(restrictions: TariffRestrictions | None, state: PeriodState) -> bool:
    """Whether an element with these restrictions is active in `state`."""
    if restrictions is None:
        return not state.reservation
    r = restrictions
    if state.reservation:
        if r.reservation is None:
            return False
        if r.reservation == ReservationRestrictionType.RESERVATION_EXPIRES and not (
            state.reservation_expired
        ):
            return False
    elif r.reservation is not None:
        return False
    return (
        _time_of_day_holds(r, state.local)
        and (r.start_date is None or state.local.date() >= r.start_date)
        and (r.end_date is None or state.local.date() < r.end_date)
        and (not r.day_of_week or DayOfWeek.of(state.local.date()) in r.day_of_week)
        and (r.min_kwh is None or state.energy_kwh >= r.min_kwh)
        and (r.max_kwh is None or state.energy_kwh < r.max_kwh)
        and (r.min_duration is None or state.duration_s >= r.min_duration)
        and (r.max_duration is None or state.duration_s < r.max_duration)
        and _at_least(state.min_current, r.min_current)
        and _below(state.max_current, r.max_current)
        and _at_least(state.min_power, r.min_power)
        and _below(state.max_power, r.max_power)
    )


def _time_of_day_holds(r: TariffRestrictions, local: datetime) -> bool:
    now = local.time().replace(tzinfo=None)
    start, end = r.start_time, r.end_time
    if start is not None and end is not None:
        if start < end:
            return start <= now < end
        if start > end:  # past midnight: 22:00-06:00
            return now >= start or now < end
        return True  # equal: the whole day
    if start is not None:
        return now >= start
    if end is not None:
        return now < end
    return True


def _at_least(value: Decimal | None, bound: Decimal | None) -> bool:
    return bound is None or (value is not None and value >= bound)


def _below(value: Decimal | None, bound: Decimal | None) -> bool:
    return bound is None or (value is not None and value < bound)


def active_component(
    tariff: Tariff, dimension: TariffDimensionType, state: PeriodState
) -> tuple[int, PriceComponent] | None:
    """The element index and component that price `dimension` in `state`, if any."""
    for index in _element_order(tariff.elements, state):
        element = tariff.elements[index]
        component = element.component(dimension)
        if component is not None and restrictions_hold(element.restrictions, state):
            return index, component
    return None


def _element_order(elements: Sequence[TariffElement], state: PeriodState) -> list[int]:
    order = list(range(len(elements)))
    if state.reservation and state.reservation_expired:
        # RESERVATION_EXPIRES elements first: they price an expired reservation even when a
        # RESERVATION element comes earlier in the list.
        def expires_first(index: int) -> int:
            r = elements[index].restrictions
            expires = ReservationRestrictionType.RESERVATION_EXPIRES
            return 0 if r is not None and r.reservation == expires else 1

        order.sort(key=expires_first)
    return order


def period_state(
    period: ChargingPeriod,
    *,
    time_zone: tzinfo,
    started: datetime,
    energy_kwh: Decimal,
    reservation_expired: bool = False,
) -> PeriodState:
    """The restriction context of a period that starts after `energy_kwh` were charged in a
    session (or reservation) that started at `started`."""
    current = period.volume(CdrDimensionType.CURRENT)
    power = period.volume(CdrDimensionType.POWER)
    min_current = period.volume(CdrDimensionType.MIN_CURRENT)
    max_current = period.volume(CdrDimensionType.MAX_CURRENT)
    min_power = period.volume(CdrDimensionType.MIN_POWER)
    max_power = period.volume(CdrDimensionType.MAX_POWER)
    seconds = Decimal((period.start_date_time - started).total_seconds()).quantize(
        SECOND_RESOLUTION
    )
    return PeriodState(
        local=period.start_date_time.astimezone(time_zone),
        energy_kwh=energy_kwh,
        duration_s=seconds,
        reservation=period.is_reservation,
        reservation_expired=reservation_expired,
        min_current=current if min_current is None else min_current,
        max_current=current if max_current is None else max_current,
        min_power=power if min_power is None else min_power,
        max_power=power if max_power is None else max_power,
    )


def price_session(
    tariff: Tariff,
    periods: Sequence[ChargingPeriod],
    *,
    time_zone: tzinfo,
    reservation_expired: bool = False,
    decimals: int | None = None,
) -> CdrCost:
    """The cost of a session (or a reservation, or both) under `tariff`.

    `periods` are in order; the session starts at the first period that is not a
    reservation (duration restrictions count from there). `time_zone` is the site's (the
    Location's `time_zone`). `reservation_expired`: the reservation periods belong to a
    reservation that expired without a session. `decimals` overrides the currency's minor
    unit for the reported prices. Raises `ValueError` for periods without a time zone or
    out of time order."""
    for earlier, later in itertools.pairwise(periods):
        if later.start_date_time < earlier.start_date_time:
            raise ValueError(
                f"charging periods out of order: {later.start_date_time.isoformat()} after"
                f" {earlier.start_date_time.isoformat()}"
            )
    for period in periods:
        if period.start_date_time.tzinfo is None:
            raise ValueError(
                f"charging period at {period.start_date_time.isoformat()} has no time zone"
            )
    places = minor_unit(tariff.currency) if decimals is None else decimals
    with localcontext(prec=PRECISION):
        lines = _bill(tariff, periods, time_zone, reservation_expired)
        lines = _apply_steps(lines)
        lines = [_with_amounts(line) for line in lines]
        return _summarize(tariff, periods, lines, places)


def _bill(
    tariff: Tariff, periods: Sequence[ChargingPeriod], time_zone: tzinfo, expired: bool
) -> list[CostLine]:
    lines: list[CostLine] = []
    session_start = next((p.start_date_time for p in periods if not p.is_reservation), None)
    reservation_start = next((p.start_date_time for p in periods if p.is_reservation), None)
    energy = Decimal(0)
    flat_billed = {False: False, True: False}  # per reservation flag: FLAT once
    for index, period in enumerate(periods):
        reservation = period.is_reservation
        started = reservation_start if reservation else session_start
        assert started is not None  # this very period is one of its kind
        state = period_state(
            period,
            time_zone=time_zone,
            started=started,
            energy_kwh=energy,
            reservation_expired=expired,
        )
        volumes: list[tuple[TariffDimensionType, Decimal]]
        if reservation:
            reserved = _seconds(period, CdrDimensionType.RESERVATION_TIME)
            volumes = [(TariffDimensionType.TIME, reserved)]
        else:
            kwh = period.amount(CdrDimensionType.ENERGY)
            volumes = [
                (TariffDimensionType.ENERGY, kwh),
                (TariffDimensionType.TIME, _seconds(period, CdrDimensionType.TIME)),
                (TariffDimensionType.PARKING_TIME, _seconds(period, CdrDimensionType.PARKING_TIME)),
            ]
            energy += kwh
        if not flat_billed[reservation]:
            found = active_component(tariff, TariffDimensionType.FLAT, state)
            if found is not None:
                flat_billed[reservation] = True
                lines.append(_line(index, TariffDimensionType.FLAT, reservation, found, Decimal(1)))
        for dimension, quantity in volumes:
            if quantity <= 0:
                continue
            found = active_component(tariff, dimension, state)
            if found is not None:
                lines.append(_line(index, dimension, reservation, found, quantity))
    return lines


def _seconds(period: ChargingPeriod, kind: CdrDimensionType) -> Decimal:
    return (period.amount(kind) * SECONDS_PER_HOUR).quantize(SECOND_RESOLUTION)


def _line(
    period: int,
    dimension: TariffDimensionType,
    reservation: bool,
    found: tuple[int, PriceComponent],
    quantity: Decimal,
) -> CostLine:
    element, component = found
    return CostLine(
        period=period,
        dimension=dimension,
        reservation=reservation,
        element=element,
        component=component,
        quantity=quantity,
        billed=quantity,
        excl_vat=Decimal(0),
        incl_vat=Decimal(0),
    )


def _apply_steps(lines: list[CostLine]) -> list[CostLine]:
    """Round each stepped total up and bill the extra on its last line (2.2.1 d2)."""
    energy = [i for i, line in enumerate(lines) if _is(line, TariffDimensionType.ENERGY, False)]
    _step_up(lines, energy, WH_PER_KWH)
    timed = [
        i
        for i, line in enumerate(lines)
        if not line.reservation
        and line.dimension in (TariffDimensionType.TIME, TariffDimensionType.PARKING_TIME)
    ]
    if timed:
        # The dimension of the last period with a time-based price is the one rounded; a period
        # with both charging and parking lists parking last, as parking follows charging.
        last_dimension = lines[timed[-1]].dimension
        _step_up(lines, [i for i in timed if lines[i].dimension == last_dimension], Decimal(1))
    reserved = [i for i, line in enumerate(lines) if _is(line, TariffDimensionType.TIME, True)]
    _step_up(lines, reserved, Decimal(1))
    return lines


def _is(line: CostLine, dimension: TariffDimensionType, reservation: bool) -> bool:
    return line.dimension == dimension and line.reservation == reservation


def _step_up(lines: list[CostLine], indexes: list[int], per_step_unit: Decimal) -> None:
    """`per_step_unit`: step units per quantity unit (Wh per kWh, 1 s per s)."""
    if not indexes:
        return
    last = lines[indexes[-1]]
    step = last.component.step_size
    if step <= 1:
        return
    total = sum((lines[i].quantity for i in indexes), Decimal(0)) * per_step_unit
    # Counted at STEP_RESOLUTION, so that float noise in a partner's volumes (5.4000000001
    # kWh) does not cost a whole step.
    steps = (total.quantize(STEP_RESOLUTION) / step).to_integral_value(ROUND_CEILING)
    extra = (steps * step - total) / per_step_unit
    if extra > 0:
        lines[indexes[-1]] = replace(last, billed=last.billed + extra)


def _numerators(line: CostLine) -> tuple[Decimal, Decimal | None, Decimal]:
    """The line's amounts excluding and including VAT as numerators over a divisor (3600
    for time, 1 otherwise): totals divide once, so an exact total such as 6.195 is not
    turned into 6.19499… by per-line divisions that round at the last digit."""
    price = line.component.price
    divisor = Decimal(1)
    if line.dimension == TariffDimensionType.FLAT:
        excl = price
    elif line.dimension == TariffDimensionType.ENERGY:
        excl = line.billed * price
    else:
        excl, divisor = line.billed * price, SECONDS_PER_HOUR
    vat = line.component.vat
    if vat is not None:
        incl: Decimal | None = excl + excl * vat / 100
    else:
        incl = excl if excl == 0 else None
    return excl, incl, divisor


def _with_amounts(line: CostLine) -> CostLine:
    excl, incl, divisor = _numerators(line)
    return replace(line, excl_vat=excl / divisor, incl_vat=None if incl is None else incl / divisor)


def _summarize(
    tariff: Tariff, periods: Sequence[ChargingPeriod], lines: list[CostLine], places: int
) -> CdrCost:
    def total(selected: list[CostLine]) -> tuple[Decimal, Decimal | None]:
        excl: dict[Decimal, Decimal] = {}
        incl: dict[Decimal, Decimal] | None = {}
        for line in selected:
            line_excl, line_incl, divisor = _numerators(line)
            excl[divisor] = excl.get(divisor, Decimal(0)) + line_excl
            if incl is not None and line_incl is not None:
                incl[divisor] = incl.get(divisor, Decimal(0)) + line_incl
            else:
                incl = None
        return (
            sum((amount / divisor for divisor, amount in excl.items()), Decimal(0)),
            None
            if incl is None
            else sum((amount / divisor for divisor, amount in incl.items()), Decimal(0)),
        )

    def part(dimension: TariffDimensionType) -> tuple[Decimal, Decimal | None]:
        return total([line for line in lines if _is(line, dimension, False)])

    fixed = part(TariffDimensionType.FLAT)
    energy = part(TariffDimensionType.ENERGY)
    timed = part(TariffDimensionType.TIME)
    parking = part(TariffDimensionType.PARKING_TIME)
    reservation = total([line for line in lines if line.reservation])
    excl, incl = total(lines)
    min_applied = max_applied = False
    low, high = tariff.min_price, tariff.max_price
    if low is not None:
        if excl < low.excl_vat:
            excl, min_applied = low.excl_vat, True
        if incl is not None and low.incl_vat is not None and incl < low.incl_vat:
            incl, min_applied = low.incl_vat, True
    if high is not None:
        if excl > high.excl_vat:
            excl, max_applied = high.excl_vat, True
        if incl is not None and high.incl_vat is not None and incl > high.incl_vat:
            incl, max_applied = high.incl_vat, True

    def price(amounts: tuple[Decimal, Decimal | None]) -> Price:
        including = amounts[1]
        return Price(
            _round(amounts[0], places), None if including is None else _round(including, places)
        )

    sessions = [p for p in periods if not p.is_reservation]
    # Hours from whole microseconds, like the billed time: the same seconds, the same total.
    charging = sum((_seconds(p, CdrDimensionType.TIME) for p in sessions), Decimal(0))
    charging /= SECONDS_PER_HOUR
    parked = sum((_seconds(p, CdrDimensionType.PARKING_TIME) for p in sessions), Decimal(0))
    parked /= SECONDS_PER_HOUR
    return CdrCost(
        currency=tariff.currency,
        total_cost=price((excl, incl)),
        total_fixed_cost=price(fixed),
        total_energy=sum((p.amount(CdrDimensionType.ENERGY) for p in sessions), Decimal(0)),
        total_energy_cost=price(energy),
        total_time=charging + parked,
        total_time_cost=price(timed),
        total_parking_time=parked,
        total_parking_cost=price(parking),
        total_reservation_cost=price(reservation),
        lines=tuple(lines),
        min_price_applied=min_applied,
        max_price_applied=max_applied,
    )


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
