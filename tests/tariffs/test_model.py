"""The tariff model: OCPI JSON in and out, and malformed tariffs refused naming the field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from gateway.tariffs.model import (
    DayOfWeek,
    ReservationRestrictionType,
    TariffDimensionType,
    TariffError,
    TariffType,
    parse_tariff,
)
from gateway.tariffs.periods import CdrDimensionType, parse_charging_period

# OCPI 2.2.1 mod_tariffs, "Complex Tariff example" (tariff 14), with every optional field of
# the Tariff object added so the round trip covers them all.
FULL: dict[str, Any] = {
    "country_code": "DE",
    "party_id": "ALL",
    "id": "14",
    "currency": "EUR",
    "type": "REGULAR",
    "tariff_alt_text": [{"language": "en", "text": "Start 2.50, then per hour"}],
    "tariff_alt_url": "https://company.com/tariffs/14",
    "min_price": {"excl_vat": 0.5, "incl_vat": 0.6},
    "max_price": {"excl_vat": 50},
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 2.5, "vat": 15, "step_size": 1}]},
        {
            "price_components": [{"type": "TIME", "price": 1, "vat": 20, "step_size": 900}],
            "restrictions": {"max_current": 32},
        },
        {
            "price_components": [{"type": "TIME", "price": 2, "vat": 20, "step_size": 600}],
            "restrictions": {
                "min_current": 32,
                "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
            },
        },
        {
            "price_components": [{"type": "PARKING_TIME", "price": 5, "vat": 10, "step_size": 300}],
            "restrictions": {
                "start_time": "09:00",
                "end_time": "18:00",
                "start_date": "2024-01-01",
                "end_date": "2030-01-01",
                "min_kwh": 0.5,
                "max_kwh": 100,
                "min_power": 1.5,
                "max_power": 350,
                "min_duration": 60,
                "max_duration": 86400,
            },
        },
        {
            "price_components": [{"type": "TIME", "price": 5, "vat": 20, "step_size": 60}],
            "restrictions": {"reservation": "RESERVATION"},
        },
    ],
    "start_date_time": "2024-01-01T00:00:00Z",
    "end_date_time": "2030-12-31T23:59:59Z",
    "energy_mix": {
        "is_green_energy": True,
        "energy_sources": [{"source": "SOLAR", "percentage": 35.5}],
    },
    "last_updated": "2015-06-29T20:39:09Z",
}


def test_full_tariff_parses_into_decimals_and_enums() -> None:
    tariff = parse_tariff(FULL)
    assert tariff.type == TariffType.REGULAR
    assert tariff.min_price is not None
    assert tariff.min_price.incl_vat == Decimal("0.6")
    assert tariff.max_price is not None
    assert tariff.max_price.incl_vat is None
    flat = tariff.elements[0].price_components[0]
    assert flat.type == TariffDimensionType.FLAT
    assert (flat.price, flat.vat) == (Decimal("2.5"), Decimal(15))
    weekdays = tariff.elements[2].restrictions
    assert weekdays is not None
    assert weekdays.day_of_week[0] == DayOfWeek.MONDAY
    parking = tariff.elements[3].restrictions
    assert parking is not None
    assert parking.min_kwh == Decimal("0.5")
    assert parking.start_time is not None
    assert parking.start_time.hour == 9
    reservation = tariff.elements[4].restrictions
    assert reservation is not None
    assert reservation.reservation == ReservationRestrictionType.RESERVATION
    assert tariff.last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)
    assert tariff.uses_local_time


def test_round_trip_through_json() -> None:
    tariff = parse_tariff(FULL)
    text = json.dumps(tariff.to_ocpi())
    assert json.loads(text) == FULL
    assert parse_tariff(json.loads(text, parse_float=Decimal)) == tariff


def test_floats_keep_their_decimal_text() -> None:
    # 0.1 as a float is 0.1000000000000000055…; the model keeps the text the sender meant.
    raw = copy.deepcopy(FULL)
    raw["elements"][0]["price_components"][0]["price"] = 0.1
    assert parse_tariff(raw).elements[0].price_components[0].price == Decimal("0.1")


def test_no_designator_means_utc() -> None:
    raw = {**FULL, "last_updated": "2015-06-29T20:39:09"}
    assert parse_tariff(raw).last_updated == datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)


def test_unknown_fields_ignored_unless_strict() -> None:
    raw = {**FULL, "tax_included": "NO"}  # a 2.3.0 field a 2.2.1 receiver may meet
    assert parse_tariff(raw).id == "14"
    with pytest.raises(TariffError) as caught:
        parse_tariff(raw, strict=True)
    assert caught.value.field == "tax_included"


def with_change(path: str, value: Any) -> dict[str, Any]:
    """FULL with one field replaced (value ...) or removed (value DROP)."""
    raw = copy.deepcopy(FULL)
    target: Any = raw
    parts = path.replace("]", "").replace("[", ".").split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last = parts[-1]
    if value is DROP:
        del target[last]
    elif last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return raw


DROP = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("country_code", "DEU", "must be 2 characters"),
        ("party_id", DROP, "missing required field"),
        ("id", "x" * 37, "at most 36"),
        ("currency", "euro", "ISO 4217"),
        ("type", "CHEAP", "must be one of AD_HOC_PAYMENT"),
        ("tariff_alt_text[0].language", "eng", "must be 2 characters"),
        ("tariff_alt_url", "ftp://company.com/t", "http(s) URL"),
        ("min_price.excl_vat", "0.50", "must be a number"),
        ("max_price.excl_vat", 0.1, "is above max_price.excl_vat"),
        ("elements", [], "non-empty list"),
        ("elements[1].price_components", [], "non-empty list"),
        ("elements[1].price_components[0].type", "KWH", "must be one of ENERGY"),
        ("elements[1].price_components[0].price", -1, "must not be negative"),
        ("elements[1].price_components[0].price", float("nan"), "finite"),
        ("elements[1].price_components[0].price", True, "must be a number"),
        ("elements[1].price_components[0].price", 10**12, "at most 1000000000"),
        ("elements[1].price_components[0].vat", 120, "at most 100"),
        ("elements[1].price_components[0].step_size", 1.5, "integer >= 0"),
        ("elements[1].price_components[0].step_size", DROP, "integer >= 0"),
        ("elements[3].restrictions.start_time", "9:00", "HH:MM"),
        ("elements[3].restrictions.end_time", "24:00", "HH:MM"),
        ("elements[3].restrictions.start_date", "2024-02-30", "not a calendar date"),
        ("elements[3].restrictions.end_date", "01-01-2030", "YYYY-MM-DD"),
        ("elements[3].restrictions.min_kwh", 200, "must be below max_kwh"),
        ("elements[3].restrictions.min_duration", -5, "seconds >= 0"),
        ("elements[2].restrictions.day_of_week[1]", "TUE", "must be one of MONDAY"),
        ("elements[2].restrictions.day_of_week", "MONDAY", "list of days"),
        ("elements[4].restrictions.reservation", "BOOKED", "must be one of RESERVATION"),
        ("elements[4].price_components[0].type", "ENERGY", "only have FLAT and TIME"),
        ("end_date_time", "2023-01-01T00:00:00Z", "after start_date_time"),
        ("last_updated", "yesterday", "RFC 3339"),
        ("energy_mix", [1], "must be an object"),
    ],
)
def test_malformed_tariff_names_the_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_tariff(with_change(path, value))
    error = caught.value
    # A min above its max is reported at the min (the pair's lower bound).
    expected_field = {"max_price.excl_vat": "min_price.excl_vat"}.get(path, path)
    assert error.field == expected_field
    assert message in str(error)
    assert str(error).startswith(f"{expected_field}: ")


def test_not_an_object() -> None:
    with pytest.raises(TariffError, match="must be an object"):
        parse_tariff([FULL])


def test_charging_period_round_trip() -> None:
    raw = {
        "start_date_time": "2025-06-02T07:30:00Z",
        "dimensions": [
            {"type": "ENERGY", "volume": 12.5},
            {"type": "TIME", "volume": 1.25},
            {"type": "MAX_CURRENT", "volume": 16},
        ],
        "tariff_id": "14",
    }
    period = parse_charging_period(raw)
    assert period.volume(CdrDimensionType.ENERGY) == Decimal("12.5")
    assert period.amount(CdrDimensionType.PARKING_TIME) == 0
    assert period.to_ocpi() == raw


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"start_date_time": "2025-06-02T07:30:00Z", "dimensions": []}, "dimensions"),
        (
            {"start_date_time": "x", "dimensions": [{"type": "ENERGY", "volume": 1}]},
            "start_date_time",
        ),
        (
            {"start_date_time": "2025-06-02T07:30:00Z", "dimensions": [{"type": "KWH"}]},
            "dimensions[0].type",
        ),
        (
            {
                "start_date_time": "2025-06-02T07:30:00Z",
                "dimensions": [{"type": "ENERGY", "volume": "1"}],
            },
            "dimensions[0].volume",
        ),
        (
            {
                "start_date_time": "2025-06-02T07:30:00Z",
                "dimensions": [{"type": "TIME", "volume": 1e300}],
            },
            "dimensions[0].volume",
        ),
    ],
)
def test_malformed_charging_period_names_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(TariffError) as caught:
        parse_charging_period(raw)
    assert caught.value.field == field
