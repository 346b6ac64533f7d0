"""OCPI 2.2.1 charging periods (mod_cdrs "ChargingPeriod" and "CdrDimension").

A period starts at `start_date_time` and ends where the next one starts (the last one where
the session ends). Its dimensions give the volumes used in it: ENERGY in kWh, TIME (charging),
PARKING_TIME (not charging) and RESERVATION_TIME in hours, and the instantaneous extremes
MIN/MAX_CURRENT (A, summed over the phases) and MIN/MAX_POWER (kW) that restrictions compare.
The spec asks for a new period whenever a tariff restriction boundary is crossed, so the price
of a period is decided once, at its start (`gateway.tariffs.pricing`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

from gateway.tariffs.model import (
    ID_MAX,
    TariffError,
    _datetime,
    _enum,
    _number,
    _object,
    _text,
    format_datetime,
    json_number,
)

VOLUME_DECIMALS: Final = Decimal("1E-12")
"""Volumes go out with at most 12 decimals: an hour volume of a period cut at a microsecond is
exact to 3.6 ns that way, and no JSON float loses more."""


VOLUME_MAX: Final = Decimal(10**9)
"""No period holds more than this (kWh, hours, A, kW): a bound far above any charger, so
that absurd input is refused instead of overflowing the arithmetic of the engine."""


class CdrDimensionType(StrEnum):
    CURRENT = "CURRENT"
    ENERGY = "ENERGY"
    ENERGY_EXPORT = "ENERGY_EXPORT"
    ENERGY_IMPORT = "ENERGY_IMPORT"
    MAX_CURRENT = "MAX_CURRENT"
    MIN_CURRENT = "MIN_CURRENT"
    MAX_POWER = "MAX_POWER"
    MIN_POWER = "MIN_POWER"
    PARKING_TIME = "PARKING_TIME"
    POWER = "POWER"
    RESERVATION_TIME = "RESERVATION_TIME"
    STATE_OF_CHARGE = "STATE_OF_CHARGE"
    TIME = "TIME"


@dataclass(frozen=True, slots=True)
class CdrDimension:
    type: CdrDimensionType
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start_date_time: datetime
    """Aware; the period lasts until the next period starts."""
    dimensions: tuple[CdrDimension, ...]
    tariff_id: str | None = None

    def volume(self, kind: CdrDimensionType) -> Decimal | None:
        """The volume of one dimension, None when the period does not carry it."""
        return next((d.volume for d in self.dimensions if d.type == kind), None)

    def amount(self, kind: CdrDimensionType) -> Decimal:
        """The volume of one dimension, 0 when absent."""
        return self.volume(kind) or Decimal(0)

    @property
    def is_reservation(self) -> bool:
        return self.amount(CdrDimensionType.RESERVATION_TIME) > 0

    def to_ocpi(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_date_time": format_datetime(self.start_date_time),
            "dimensions": [
                {"type": d.type.value, "volume": json_number(_rounded(d.volume))}
                for d in self.dimensions
            ],
        }
        if self.tariff_id is not None:
            out["tariff_id"] = self.tariff_id
        return out


def _rounded(volume: Decimal) -> Decimal:
    try:
        return volume.quantize(VOLUME_DECIMALS).normalize()
    except InvalidOperation:  # too many digits for the context: an absurd volume, sent as is
        return volume


def parse_charging_period(raw: Any, where: str = "") -> ChargingPeriod:
    """A ChargingPeriod from its OCPI JSON form; raises `TariffError` naming the field."""
    prefix = f"{where}." if where else ""
    obj: Mapping[str, Any] = _object(where, raw)
    raw_dimensions = obj.get("dimensions")
    if not isinstance(raw_dimensions, list) or not raw_dimensions:
        raise TariffError(f"{prefix}dimensions", "must be a non-empty list")
    dimensions = []
    for index, item in enumerate(raw_dimensions):
        at = f"{prefix}dimensions[{index}]"
        dimension = _object(at, item)
        dimensions.append(
            CdrDimension(
                type=_enum(f"{at}.type", dimension.get("type"), CdrDimensionType),
                volume=_number(f"{at}.volume", dimension.get("volume"), high=VOLUME_MAX),
            )
        )
    tariff_id = obj.get("tariff_id")
    return ChargingPeriod(
        start_date_time=_datetime(f"{prefix}start_date_time", obj.get("start_date_time")),
        dimensions=tuple(dimensions),
        tariff_id=None if tariff_id is None else _text(f"{prefix}tariff_id", tariff_id, ID_MAX),
    )
