"""Properties of the tariff engine and the period builder over generated tariffs and sessions."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.tariffs.metering import MeterSample, build_charging_periods
from gateway.tariffs.model import Tariff, parse_tariff
from gateway.tariffs.periods import CdrDimension, CdrDimensionType, ChargingPeriod
from gateway.tariffs.pricing import PRECISION, price_session

ZONE = ZoneInfo("Europe/Amsterdam")
START = datetime(2025, 3, 29, 20, 0, tzinfo=UTC)  # the night summer time begins in Europe

money = st.decimals(min_value=0, max_value=10, places=2)
vats = st.none() | st.sampled_from([Decimal(0), Decimal("5.2"), Decimal(19), Decimal(21)])
steps = st.sampled_from([0, 1, 60, 300, 500, 900, 1800])
DIMENSIONS = ["ENERGY", "FLAT", "TIME", "PARKING_TIME"]


def _number(value: Decimal) -> float:
    return float(value)


@st.composite
def components(draw: st.DrawFn) -> list[dict[str, Any]]:
    kinds = draw(st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=3, unique=True))
    out = []
    for kind in kinds:
        item: dict[str, Any] = {
            "type": kind,
            "price": _number(draw(money)),
            "step_size": draw(steps),
        }
        vat = draw(vats)
        if vat is not None:
            item["vat"] = _number(vat)
        out.append(item)
    return out


@st.composite
def restrictions(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["start_time"] = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30])):02d}"
    if draw(st.booleans()):
        out["end_time"] = f"{draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15])):02d}"
    if draw(st.booleans()):
        days = st.sampled_from(["MONDAY", "SATURDAY", "SUNDAY"])
        out["day_of_week"] = draw(st.lists(days, min_size=1, max_size=3, unique=True))
    for low, high, values in (
        ("min_kwh", "max_kwh", st.integers(0, 40)),
        ("min_duration", "max_duration", st.integers(0, 4).map(lambda h: h * 1800)),
        ("min_power", "max_power", st.integers(0, 50)),
        ("min_current", "max_current", st.integers(0, 64)),
    ):
        bounds = sorted(set(draw(st.lists(values, min_size=0, max_size=2))))
        if len(bounds) == 2:
            out[low], out[high] = bounds
        elif len(bounds) == 1:
            out[draw(st.sampled_from([low, high]))] = bounds[0]
    return out


@st.composite
def tariffs(draw: st.DrawFn, *, limits: bool = True) -> Tariff:
    elements = []
    for _ in range(draw(st.integers(1, 4))):
        element: dict[str, Any] = {"price_components": draw(components())}
        restriction = draw(restrictions())
        if restriction is not None:
            element["restrictions"] = restriction
        elements.append(element)
    raw: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "EVG",
        "id": "T",
        "currency": "EUR",
        "elements": elements,
        "last_updated": "2025-01-01T00:00:00Z",
    }
    if limits and draw(st.booleans()):
        low = draw(money)
        high = low + draw(money)
        raw["min_price"] = {"excl_vat": _number(low), "incl_vat": _number(low * 2)}
        raw["max_price"] = {"excl_vat": _number(high), "incl_vat": _number(high * 2)}
    return parse_tariff(raw)


@st.composite
def sessions(draw: st.DrawFn) -> list[ChargingPeriod]:
    periods = []
    at = START + timedelta(minutes=draw(st.integers(0, 24 * 60)))
    for _ in range(draw(st.integers(1, 6))):
        minutes = draw(st.integers(0, 300))
        hours = Decimal(minutes) / 60
        dimensions: tuple[CdrDimension, ...]
        if draw(st.booleans()):
            kw = Decimal(draw(st.integers(0, 50)))
            amps = Decimal(draw(st.integers(0, 64)))
            dimensions = (
                CdrDimension(CdrDimensionType.ENERGY, kw * hours),
                CdrDimension(CdrDimensionType.TIME, hours),
                CdrDimension(CdrDimensionType.MIN_POWER, kw),
                CdrDimension(CdrDimensionType.MAX_POWER, kw),
                CdrDimension(CdrDimensionType.MIN_CURRENT, amps),
                CdrDimension(CdrDimensionType.MAX_CURRENT, amps),
            )
        else:
            dimensions = (CdrDimension(CdrDimensionType.PARKING_TIME, hours),)
        periods.append(ChargingPeriod(at, dimensions))
        at += timedelta(minutes=minutes)
    return periods


@settings(max_examples=300, deadline=None)
@given(tariffs(), sessions())
def test_costs_are_never_negative_and_vat_never_lowers_them(
    tariff: Tariff, periods: list[ChargingPeriod]
) -> None:
    cost = price_session(tariff, periods, time_zone=ZONE)
    for price in (
        cost.total_cost,
        cost.total_fixed_cost,
        cost.total_energy_cost,
        cost.total_time_cost,
        cost.total_parking_cost,
        cost.total_reservation_cost,
    ):
        assert price.excl_vat >= 0
        assert price.incl_vat is None or price.incl_vat >= price.excl_vat
    for line in cost.lines:
        assert line.billed >= line.quantity > 0


@settings(max_examples=300, deadline=None)
@given(tariffs(limits=False), sessions())
def test_step_size_only_increases_the_billed_amount(
    tariff: Tariff, periods: list[ChargingPeriod]
) -> None:
    unstepped = dataclasses.replace(
        tariff,
        elements=tuple(
            dataclasses.replace(
                element,
                price_components=tuple(
                    dataclasses.replace(component, step_size=1)
                    for component in element.price_components
                ),
            )
            for element in tariff.elements
        ),
    )
    stepped = price_session(tariff, periods, time_zone=ZONE)
    plain = price_session(unstepped, periods, time_zone=ZONE)
    exact = sum((line.excl_vat for line in stepped.lines), Decimal(0))
    exact_plain = sum((line.excl_vat for line in plain.lines), Decimal(0))
    assert exact >= exact_plain
    assert stepped.total_cost.excl_vat >= plain.total_cost.excl_vat


@settings(max_examples=300, deadline=None)
@given(tariffs(limits=True), sessions())
def test_min_and_max_price_bound_the_total(tariff: Tariff, periods: list[ChargingPeriod]) -> None:
    cost = price_session(tariff, periods, time_zone=ZONE)
    if tariff.min_price is not None:
        assert cost.total_cost.excl_vat >= tariff.min_price.excl_vat
    if tariff.max_price is not None:
        assert cost.total_cost.excl_vat <= tariff.max_price.excl_vat
        if cost.total_cost.incl_vat is not None and tariff.max_price.incl_vat is not None:
            assert cost.total_cost.incl_vat <= tariff.max_price.incl_vat


@settings(max_examples=200, deadline=None)
@given(
    price=money,
    step=steps,
    flat=st.none() | money,
    limits=st.none() | st.tuples(money, money),
    energies=st.lists(st.decimals(0, 100, places=3), min_size=2, max_size=2),
)
def test_energy_only_tariff_is_monotone_in_energy(
    price: Decimal,
    step: int,
    flat: Decimal | None,
    limits: tuple[Decimal, Decimal] | None,
    energies: list[Decimal],
) -> None:
    components: list[dict[str, Any]] = [
        {"type": "ENERGY", "price": float(price), "vat": 21, "step_size": step}
    ]
    if flat is not None:
        components.append({"type": "FLAT", "price": float(flat), "vat": 21, "step_size": 1})
    raw: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "EVG",
        "id": "E",
        "currency": "EUR",
        "elements": [{"price_components": components}],
        "last_updated": "2025-01-01T00:00:00Z",
    }
    if limits is not None:
        raw["min_price"] = {"excl_vat": float(limits[0])}
        raw["max_price"] = {"excl_vat": float(limits[0] + limits[1])}
    tariff = parse_tariff(raw)
    low, high = sorted(energies)

    def cost(kwh: Decimal) -> Decimal:
        period = ChargingPeriod(
            START,
            (
                CdrDimension(CdrDimensionType.ENERGY, kwh),
                CdrDimension(CdrDimensionType.TIME, Decimal(1)),
            ),
        )
        return price_session(tariff, [period], time_zone=ZONE).total_cost.excl_vat

    assert cost(low) <= cost(high)


@settings(max_examples=200, deadline=None)
@given(tariffs())
def test_tariffs_survive_the_json_round_trip(tariff: Tariff) -> None:
    text = json.dumps(tariff.to_ocpi())
    assert parse_tariff(json.loads(text)) == tariff


@st.composite
def sample_series(draw: st.DrawFn) -> list[MeterSample]:
    at = START + timedelta(minutes=draw(st.integers(0, 24 * 60)))
    energy = Decimal(draw(st.integers(0, 10**6)))
    samples = []
    for _ in range(draw(st.integers(2, 12))):
        samples.append(
            MeterSample(
                at=at,
                energy_wh=energy,
                power_w=Decimal(draw(st.integers(0, 50_000))),
                current_a=Decimal(draw(st.integers(0, 96))),
                charging=draw(st.booleans()),
            )
        )
        at += timedelta(seconds=draw(st.integers(0, 7200)))
        energy += Decimal(draw(st.integers(0, 30_000)))
    return samples


@settings(max_examples=300, deadline=None)
@given(tariffs(), sample_series())
def test_periods_keep_every_wh_and_second_and_price_as_their_pieces(
    tariff: Tariff, samples: list[MeterSample]
) -> None:
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=tariff)
    # Summed at the engine's precision: a split at an interpolated instant gives pieces such
    # as 1/3 and 2/3 Wh, whose sum is exact at 60 digits and not at Decimal's default 28.
    with localcontext(prec=PRECISION):
        energy = sum((p.amount(CdrDimensionType.ENERGY) for p in periods), Decimal(0))
        hours = sum(
            (
                p.amount(CdrDimensionType.TIME) + p.amount(CdrDimensionType.PARKING_TIME)
                for p in periods
            ),
            Decimal(0),
        )
    assert energy * 1000 == samples[-1].energy_wh - samples[0].energy_wh
    span = Decimal((samples[-1].at - samples[0].at).total_seconds())
    assert (hours * 3600).quantize(Decimal("0.000001")) == span
    assert [p.start_date_time for p in periods] == sorted(p.start_date_time for p in periods)
    # One period per cut piece (no merging of what prices alike) gives the same price: the
    # merged periods are priced as their pieces were.
    pieces = build_charging_periods(samples, time_zone=ZONE, tariff=tariff, merge=False)
    assert len(pieces) >= len(periods)
    merged_cost = price_session(tariff, periods, time_zone=ZONE)
    assert merged_cost == dataclasses.replace(
        price_session(tariff, pieces, time_zone=ZONE), lines=merged_cost.lines
    )
