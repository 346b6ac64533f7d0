"""Charging periods built from meter samples: cut where the price could change, priced right."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.core.charger import ChargerReading, CpState
from gateway.tariffs.metering import MeterSample, build_charging_periods, reservation_period
from gateway.tariffs.model import Tariff, parse_tariff
from gateway.tariffs.periods import CdrDimensionType, ChargingPeriod
from gateway.tariffs.pricing import price_session

ZONE = ZoneInfo("Europe/Berlin")


def tariff(elements: list[dict[str, Any]]) -> Tariff:
    return parse_tariff(
        {
            "country_code": "DE",
            "party_id": "ALL",
            "id": "T1",
            "currency": "EUR",
            "elements": elements,
            "last_updated": "2025-01-01T00:00:00Z",
        }
    )


def sample(
    at: datetime, wh: float, *, kw: float = 11, amps: float = 48, charging: bool = True
) -> MeterSample:
    return MeterSample(
        at=at,
        energy_wh=Decimal(str(wh)),
        power_w=Decimal(str(kw * 1000)),
        current_a=Decimal(str(amps)),
        charging=charging,
    )


def local(day: int, clock: str, month: int = 6) -> datetime:
    hours, minutes = clock.split(":")
    return datetime(2025, month, day, int(hours), int(minutes), tzinfo=ZONE)


def seconds(p: ChargingPeriod, kind: CdrDimensionType) -> Decimal:
    return (p.amount(kind) * 3600).quantize(Decimal("0.000001"))


def energy(p: ChargingPeriod) -> Decimal:
    return p.amount(CdrDimensionType.ENERGY)


EVENING_RATE = tariff(
    [
        {
            "price_components": [{"type": "ENERGY", "price": 0.40, "vat": 19, "step_size": 1}],
            "restrictions": {"start_time": "17:00", "end_time": "00:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.20, "vat": 19, "step_size": 1}]},
    ]
)


def test_cut_at_a_time_of_day_boundary_in_local_time() -> None:
    # 12 kW from 16:40 to 17:20 (Berlin summer time, UTC+2); the sample interval 16:50-17:05
    # straddles 17:00 and its 3 kWh are split by time: 2 kWh before, 1 kWh after.
    samples = [
        sample(local(2, "16:40"), 0, kw=12),
        sample(local(2, "16:50"), 2000, kw=12),
        sample(local(2, "17:05"), 5000, kw=12),
        sample(local(2, "17:20"), 8000, kw=12),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=EVENING_RATE)
    assert [p.start_date_time for p in periods] == [
        local(2, "16:40"),
        datetime(2025, 6, 2, 15, 0, tzinfo=UTC),
    ]
    assert [energy(p) for p in periods] == [Decimal(4), Decimal(4)]
    assert [seconds(p, CdrDimensionType.TIME) for p in periods] == [1200, 1200]
    assert all(p.tariff_id == "T1" for p in periods)
    # 4 kWh * 0.20 + 4 kWh * 0.40 = 2.40; * 1.19 = 2.856 -> 2.86.
    cost = price_session(EVENING_RATE, periods, time_zone=ZONE)
    assert cost.total_cost.excl_vat == Decimal("2.40")
    assert cost.total_cost.incl_vat == Decimal("2.86")


FIRST_KWH_FREE = tariff(
    [
        {
            "price_components": [{"type": "ENERGY", "price": 0, "step_size": 1}],
            "restrictions": {"max_kwh": 1},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]},
    ]
)


def test_cut_where_the_energy_crosses_a_kwh_threshold() -> None:
    # 1.5 kWh in the first 10 min: 1 kWh is reached 2/3 of the way, at 400 s.
    start = local(2, "10:00")
    samples = [
        sample(start, 10_000),  # a lifetime register: only differences count
        sample(start + timedelta(minutes=10), 11_500),
        sample(start + timedelta(minutes=20), 13_000),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=FIRST_KWH_FREE)
    assert [p.start_date_time - start for p in periods] == [timedelta(0), timedelta(seconds=400)]
    assert [energy(p) for p in periods] == [Decimal(1), Decimal(2)]
    # The first kWh free, 2 kWh * 0.30 = 0.60.
    assert price_session(FIRST_KWH_FREE, periods, time_zone=ZONE).total_cost.excl_vat == Decimal(
        "0.60"
    )


def test_spec_max_duration_example_from_samples() -> None:
    # OCPI 2.2.1 mod_tariffs, "Example: Tariff with max_duration Tariff Restrictions": the
    # first 30 min free, 0.25/kWh to 60 min, then 0.40. Samples at 0, 25, 35 and 40 min: the
    # 30 min cut falls between samples; energy there is interpolated: 4 + 2 * 5/10 = 5 kWh.
    t = tariff(
        [
            {
                "price_components": [{"type": "ENERGY", "price": 0, "vat": 20, "step_size": 1}],
                "restrictions": {"max_duration": 1800},
            },
            {
                "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 20, "step_size": 1}],
                "restrictions": {"max_duration": 3600},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20, "step_size": 1}]},
        ]
    )
    start = local(2, "10:00")
    samples = [
        sample(start, 0),
        sample(start + timedelta(minutes=25), 4000),
        sample(start + timedelta(minutes=35), 6000),
        sample(start + timedelta(minutes=40), 6200),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=t)
    assert [p.start_date_time - start for p in periods] == [timedelta(0), timedelta(minutes=30)]
    assert [energy(p) for p in periods] == [Decimal(5), Decimal("1.2")]
    cost = price_session(t, periods, time_zone=ZONE)
    assert cost.total_cost.excl_vat == Decimal("0.30")
    assert cost.total_cost.incl_vat == Decimal("0.36")


def test_spec_max_power_example_from_samples() -> None:
    # OCPI 2.2.1 mod_tariffs, "Example: Tariff with max_power Tariff Restrictions": 1 kWh at
    # 6 kW (10 min), 40 kWh at 48 kW (50 min), 0.5 kWh at 4 kW (7.5 min): 20.30.
    t = tariff(
        [
            {
                "price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}],
                "restrictions": {"max_power": 16},
            },
            {
                "price_components": [{"type": "ENERGY", "price": 0.35, "step_size": 1}],
                "restrictions": {"max_power": 32},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}]},
        ]
    )
    start = local(2, "10:00")
    samples = [
        sample(start, 0, kw=6),
        sample(start + timedelta(minutes=5), 500, kw=6),
        sample(start + timedelta(minutes=10), 1000, kw=48),
        sample(start + timedelta(minutes=35), 21_000, kw=48),
        sample(start + timedelta(minutes=60), 41_000, kw=4),
        sample(start + timedelta(minutes=67.5), 41_500, kw=4),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=t)
    assert [energy(p) for p in periods] == [Decimal(1), Decimal(40), Decimal("0.5")]
    assert [p.volume(CdrDimensionType.MAX_POWER) for p in periods] == [6, 48, 4]
    assert price_session(t, periods, time_zone=ZONE).total_cost.excl_vat == Decimal("20.30")


def test_charging_then_parking_and_weekday_change_at_local_midnight() -> None:
    # Sunday 23:30 to Monday 00:30 local; parking is priced on weekdays only. Charging stops
    # at 23:50; the parked time is cut at midnight, where Monday's parking price begins.
    t = tariff(
        [
            {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]},
            {
                "price_components": [{"type": "PARKING_TIME", "price": 6, "step_size": 60}],
                "restrictions": {"day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY"]},
            },
        ]
    )
    samples = [
        sample(local(1, "23:30"), 0),
        sample(local(1, "23:50"), 3000, kw=0, amps=0, charging=False),
        sample(local(2, "00:30"), 3000, kw=0, amps=0, charging=False),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=t)
    starts = [local(1, "23:30"), local(1, "23:50"), local(2, "00:00")]
    assert [p.start_date_time for p in periods] == starts
    assert seconds(periods[0], CdrDimensionType.TIME) == 1200
    assert [seconds(p, CdrDimensionType.PARKING_TIME) for p in periods[1:]] == [600, 1800]
    cost = price_session(t, periods, time_zone=ZONE)
    # 3 kWh * 0.30 = 0.90; Sunday parking free; Monday 30 min * 6/h = 3.00.
    assert cost.total_energy_cost.excl_vat == Decimal("0.90")
    assert cost.total_parking_cost.excl_vat == Decimal("3.00")


def test_time_boundary_on_the_day_daylight_saving_time_ends() -> None:
    # 26 Oct 2025 Berlin: 03:00 CEST becomes 02:00 CET. A night rate to 06:00 local ends at
    # 05:00 UTC that day (UTC+1), not 04:00.
    t = tariff(
        [
            {
                "price_components": [{"type": "ENERGY", "price": 0.10, "step_size": 1}],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]},
        ]
    )
    start = datetime(2025, 10, 26, 3, 0, tzinfo=UTC)
    samples = [sample(start, 0), sample(start + timedelta(hours=4), 4000)]
    periods = build_charging_periods(samples, time_zone=ZONE, tariff=t)
    assert [p.start_date_time for p in periods] == [start, datetime(2025, 10, 26, 5, 0, tzinfo=UTC)]
    # 2 kWh at 0.10 + 2 kWh at 0.30 = 0.80.
    assert price_session(t, periods, time_zone=ZONE).total_cost.excl_vat == Decimal("0.80")


def test_periods_only_as_fine_as_the_price_needs() -> None:
    # One unrestricted price: varying power and many samples still make one period, whose
    # MIN/MAX dimensions span what was seen.
    t = tariff([{"price_components": [{"type": "ENERGY", "price": 0.3, "step_size": 1}]}])
    start = local(2, "10:00")
    samples = [
        sample(start + timedelta(minutes=i), 100 * i, kw=6 + i, amps=10 + i) for i in range(10)
    ]
    (only,) = build_charging_periods(samples, time_zone=ZONE, tariff=t)
    assert only.volume(CdrDimensionType.MIN_POWER) == 6
    assert only.volume(CdrDimensionType.MAX_POWER) == 14
    assert only.volume(CdrDimensionType.MIN_CURRENT) == 10
    assert only.volume(CdrDimensionType.MAX_CURRENT) == 18
    assert energy(only) == Decimal("0.9")


def test_without_a_tariff_periods_change_with_charging_state_only() -> None:
    start = local(2, "16:40")
    samples = [
        sample(start, 0),
        sample(start + timedelta(minutes=30), 5000),
        sample(start + timedelta(minutes=60), 9000, charging=False),
        sample(start + timedelta(minutes=90), 9000, charging=False),
    ]
    periods = build_charging_periods(samples, time_zone=ZONE)
    assert len(periods) == 2
    assert periods[0].volume(CdrDimensionType.TIME) == 1
    assert periods[1].volume(CdrDimensionType.PARKING_TIME) == Decimal("0.5")
    assert periods[0].tariff_id is None


def test_a_register_that_goes_backwards_adds_no_energy() -> None:
    start = local(2, "10:00")
    samples = [
        sample(start, 5000),
        sample(start + timedelta(minutes=10), 1000),  # a reset
        sample(start + timedelta(minutes=20), 3000),
    ]
    (only,) = build_charging_periods(samples, time_zone=ZONE)
    assert energy(only) == Decimal(2)


def test_bad_samples_are_refused() -> None:
    start = local(2, "10:00")
    with pytest.raises(ValueError, match="out of order"):
        build_charging_periods([sample(start, 0), sample(start - timedelta(1), 0)], time_zone=ZONE)
    with pytest.raises(ValueError, match="no time zone"):
        build_charging_periods([sample(datetime(2025, 6, 2, 10, 0), 0)], time_zone=ZONE)
    assert build_charging_periods([sample(start, 0)], time_zone=ZONE) == ()


def test_sample_from_a_charger_reading() -> None:
    reading = ChargerReading(
        cp_state=CpState.C2,
        enabled=True,
        current_a=(16.0, 15.5, 16.1),
        voltage_v=(230.0, 230.0, 230.0),
        power_w=11_000.0,
        energy_wh=1234.5,
        setpoint_a=16.0,
    )
    at = local(2, "10:00")
    taken = MeterSample.from_reading(at, reading)
    assert taken == MeterSample(at, Decimal("1234.5"), Decimal("11000.0"), Decimal("47.6"), True)
    paused = MeterSample.from_reading(at, dataclasses.replace(reading, cp_state=CpState.B2))
    assert not paused.charging


def test_reservation_period() -> None:
    start = local(2, "09:00")
    period = reservation_period(start, start + timedelta(minutes=22), "T1")
    assert period.is_reservation
    assert seconds(period, CdrDimensionType.RESERVATION_TIME) == 1320
