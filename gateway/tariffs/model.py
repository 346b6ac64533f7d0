"""The OCPI 2.2.1 Tariff object (mod_tariffs "Tariff Object"), with `Decimal` for every amount.

`parse_tariff` reads the OCPI JSON form (a dict from `json.loads`, with numbers as int, float or
Decimal) and raises `TariffError` naming the field, e.g.
`elements[1].restrictions.start_time: must be a time "HH:MM", got "25:00"`; `Tariff.to_ocpi`
writes the same form back (numbers as int or float, so the standard `json` module can dump it).

2.2.1 semantics kept in the model (ocpi.md §5): `vat` is a percentage per price component and
an omitted `vat` means "no VAT applicable", which is not 0 %; a `Price` is `{excl_vat,
incl_vat?}`; a reservation element may only carry FLAT and TIME components.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final, TypeVar

ID_MAX: Final = 36
"""CiString(36): Tariff.id."""
ALT_TEXT_MAX: Final = 512
"""DisplayText.text is string(512) (types.asciidoc)."""
URL_MAX: Final = 255
"""URL type: string(255) (types.asciidoc)."""

AMOUNT_MAX: Final = Decimal(10**9)
"""No price or amount above this in any currency: refuses absurd input before it reaches
the engine's arithmetic."""

_TIME = re.compile(r"([0-1][0-9]|2[0-3]):[0-5][0-9]")
"""The spec's regex for start_time/end_time."""
_DATE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
"""The spec's regex for start_date/end_date."""
_CURRENCY = re.compile(r"[A-Z]{3}")


_E = TypeVar("_E", bound=StrEnum)


class TariffError(ValueError):
    """A tariff (or a charging period) is malformed. `field` is the path of the offending
    field, e.g. `elements[0].price_components[1].step_size`; the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    """Valid when paying ad hoc at the charger (payment terminal, credit card)."""
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"
    """Valid for RFID and sessions without a charging preference (or preference REGULAR)."""


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"
    """Per kWh; step_size multiplier 1 Wh."""
    FLAT = "FLAT"
    """Once; no unit, step_size ignored."""
    PARKING_TIME = "PARKING_TIME"
    """Per hour not charging; step_size multiplier 1 s."""
    TIME = "TIME"
    """Per hour charging (or, in a reservation element, per hour reserved); step 1 s."""


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @staticmethod
    def of(day: date) -> DayOfWeek:
        return _WEEKDAYS[day.weekday()]


_WEEKDAYS: Final = tuple(DayOfWeek)


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    """The element prices a reservation (expired or not)."""
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"
    """The element prices a reservation that expired without a charging session."""


@dataclass(frozen=True, slots=True)
class Price:
    """An amount of money: OCPI 2.2.1 `Price`. `incl_vat` is None where it cannot be known
    (a component without VAT information billed a non-zero amount)."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None

    def to_ocpi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"excl_vat": json_number(self.excl_vat)}
        if self.incl_vat is not None:
            out["incl_vat"] = json_number(self.incl_vat)
        return out


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class PriceComponent:
    type: TariffDimensionType
    price: Decimal
    """Per unit, excluding VAT: per kWh (ENERGY), per hour (TIME, PARKING_TIME), once (FLAT)."""
    step_size: int
    """Billing step in the dimension's multiplier (1 Wh, 1 s); 0 and 1 mean no rounding."""
    vat: Decimal | None = None
    """VAT percentage; None: no VAT applicable (not the same as 0 %)."""


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """When an element is active; all present restrictions must hold (logical AND)."""

    start_time: time | None = None
    """Local time of day from which the element is active (inclusive)."""
    end_time: time | None = None
    """Local time of day until which it is active (exclusive); before start_time: past
    midnight."""
    start_date: date | None = None
    """Local date from which it is active (inclusive)."""
    end_date: date | None = None
    """Local date until which it is active (exclusive)."""
    min_kwh: Decimal | None = None
    """Active once this much energy was charged in the session (inclusive)."""
    max_kwh: Decimal | None = None
    """Active while less than this much energy was charged (exclusive)."""
    min_current: Decimal | None = None
    """A, summed over the phases: active while charging with at least this current."""
    max_current: Decimal | None = None
    """A, summed over the phases: active while charging with less than this current."""
    min_power: Decimal | None = None
    """kW: active while charging with at least this power."""
    max_power: Decimal | None = None
    """kW: active while charging with less than this power."""
    min_duration: int | None = None
    """Seconds since the session started: active from then on (inclusive)."""
    max_duration: int | None = None
    """Seconds since the session started: active until then (exclusive)."""
    day_of_week: tuple[DayOfWeek, ...] = ()
    """Local weekdays on which it is active; empty: every day."""
    reservation: ReservationRestrictionType | None = None
    """Present: the element prices reservations (only FLAT and TIME components)."""

    @property
    def is_empty(self) -> bool:
        return self == _NO_RESTRICTIONS


_NO_RESTRICTIONS: Final = TariffRestrictions()


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None

    def component(self, dimension: TariffDimensionType) -> PriceComponent | None:
        """This element's component for `dimension` (the first, should there be several)."""
        return next((c for c in self.price_components if c.type == dimension), None)


@dataclass(frozen=True, slots=True)
class Tariff:
    """An OCPI 2.2.1 Tariff. `energy_mix` is kept as the OCPI JSON object, unvalidated
    beyond being an object: pricing does not use it."""

    country_code: str
    party_id: str
    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    last_updated: datetime
    type: TariffType | None = None
    """None: valid for all sessions."""
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    start_date_time: datetime | None = None
    """UTC; the tariff is not valid before."""
    end_date_time: datetime | None = None
    """UTC; the tariff is not valid after."""
    energy_mix: Mapping[str, Any] | None = field(default=None, hash=False)

    def valid_at(self, at: datetime) -> bool:
        """Whether `at` (aware) is inside the tariff's validity window."""
        if self.start_date_time is not None and at < self.start_date_time:
            return False
        return self.end_date_time is None or at <= self.end_date_time

    @property
    def uses_local_time(self) -> bool:
        """Whether any restriction depends on the local time, date or weekday (so the site's
        time zone matters)."""
        return any(
            r is not None
            and (
                r.start_time is not None
                or r.end_time is not None
                or r.start_date is not None
                or r.end_date is not None
                or bool(r.day_of_week)
            )
            for r in (element.restrictions for element in self.elements)
        )

    def to_ocpi(self) -> dict[str, Any]:
        """The OCPI JSON form (numbers as int or float; times as RFC 3339 UTC "Z")."""
        out: dict[str, Any] = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "id": self.id,
            "currency": self.currency,
        }
        if self.type is not None:
            out["type"] = self.type.value
        if self.tariff_alt_text:
            out["tariff_alt_text"] = [
                {"language": t.language, "text": t.text} for t in self.tariff_alt_text
            ]
        if self.tariff_alt_url is not None:
            out["tariff_alt_url"] = self.tariff_alt_url
        if self.min_price is not None:
            out["min_price"] = self.min_price.to_ocpi()
        if self.max_price is not None:
            out["max_price"] = self.max_price.to_ocpi()
        out["elements"] = [_element_to_ocpi(element) for element in self.elements]
        if self.start_date_time is not None:
            out["start_date_time"] = format_datetime(self.start_date_time)
        if self.end_date_time is not None:
            out["end_date_time"] = format_datetime(self.end_date_time)
        if self.energy_mix is not None:
            out["energy_mix"] = _plain(self.energy_mix)
        out["last_updated"] = format_datetime(self.last_updated)
        return out


def _element_to_ocpi(element: TariffElement) -> dict[str, Any]:
    components = []
    for component in element.price_components:
        item: dict[str, Any] = {"type": component.type.value, "price": json_number(component.price)}
        if component.vat is not None:
            item["vat"] = json_number(component.vat)
        item["step_size"] = component.step_size
        components.append(item)
    out: dict[str, Any] = {"price_components": components}
    if element.restrictions is not None:
        out["restrictions"] = _restrictions_to_ocpi(element.restrictions)
    return out


def _restrictions_to_ocpi(r: TariffRestrictions) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.start_time is not None:
        out["start_time"] = r.start_time.strftime("%H:%M")
    if r.end_time is not None:
        out["end_time"] = r.end_time.strftime("%H:%M")
    if r.start_date is not None:
        out["start_date"] = r.start_date.isoformat()
    if r.end_date is not None:
        out["end_date"] = r.end_date.isoformat()
    for name in ("min_kwh", "max_kwh", "min_current", "max_current", "min_power", "max_power"):
        value = getattr(r, name)
        if value is not None:
            out[name] = json_number(value)
    if r.min_duration is not None:
        out["min_duration"] = r.min_duration
    if r.max_duration is not None:
        out["max_duration"] = r.max_duration
    if r.day_of_week:
        out["day_of_week"] = [day.value for day in r.day_of_week]
    if r.reservation is not None:
        out["reservation"] = r.reservation.value
    return out


def json_number(value: Decimal) -> int | float:
    """A Decimal as a JSON number: int when integral, else the nearest float (whose shortest
    repr is the decimal text for any amount with at most 15 significant digits)."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def format_datetime(value: datetime) -> str:
    """RFC 3339 in UTC with "Z" (milliseconds only when present)."""
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def _plain(value: Any) -> Any:
    """A deep copy of a JSON value with Decimals as JSON numbers."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return json_number(value)
    return value


# --- parsing -------------------------------------------------------------------------------

_TARIFF_KEYS: Final = frozenset(
    {
        "country_code",
        "party_id",
        "id",
        "currency",
        "type",
        "tariff_alt_text",
        "tariff_alt_url",
        "min_price",
        "max_price",
        "elements",
        "start_date_time",
        "end_date_time",
        "energy_mix",
        "last_updated",
    }
)
_ELEMENT_KEYS: Final = frozenset({"price_components", "restrictions"})
_COMPONENT_KEYS: Final = frozenset({"type", "price", "vat", "step_size"})
_RESTRICTION_KEYS: Final = frozenset(TariffRestrictions.__dataclass_fields__)
_PRICE_KEYS: Final = frozenset({"excl_vat", "incl_vat"})


def parse_tariff(raw: Any, *, strict: bool = False, last_updated: datetime | None = None) -> Tariff:
    """A Tariff from its OCPI JSON form. Raises `TariffError` naming the first bad field.

    `strict` refuses unknown fields (for our own configuration, where an unknown key is a
    typo); otherwise they are ignored, as OCPI asks of receivers. `last_updated` is used
    when the object has none (a tariff written in the site's configuration)."""
    obj = _object("", raw)
    if strict:
        _only(obj, "", _TARIFF_KEYS)
    raw_updated = obj.get("last_updated")
    if raw_updated is None and last_updated is not None:
        updated = last_updated
    else:
        updated = _datetime("last_updated", raw_updated)
    raw_elements = obj.get("elements")
    if not isinstance(raw_elements, list) or not raw_elements:
        raise TariffError("elements", "must be a non-empty list of tariff elements")
    tariff_type = obj.get("type")
    alt_text = obj.get("tariff_alt_text", [])
    if not isinstance(alt_text, list):
        raise TariffError("tariff_alt_text", "must be a list of {language, text}")
    energy_mix = obj.get("energy_mix")
    if energy_mix is not None and not isinstance(energy_mix, Mapping):
        raise TariffError("energy_mix", f"must be an object, got {_shown(energy_mix)}")
    tariff = Tariff(
        country_code=_text("country_code", obj.get("country_code"), 2, exact=True),
        party_id=_text("party_id", obj.get("party_id"), 3, exact=True),
        id=_text("id", obj.get("id"), ID_MAX),
        currency=_currency("currency", obj.get("currency")),
        type=None if tariff_type is None else _enum("type", tariff_type, TariffType),
        tariff_alt_text=tuple(
            _display_text(f"tariff_alt_text[{i}]", item, strict) for i, item in enumerate(alt_text)
        ),
        tariff_alt_url=_optional_url("tariff_alt_url", obj.get("tariff_alt_url")),
        min_price=_optional_price("min_price", obj.get("min_price"), strict),
        max_price=_optional_price("max_price", obj.get("max_price"), strict),
        elements=tuple(
            _element(f"elements[{i}]", item, strict) for i, item in enumerate(raw_elements)
        ),
        start_date_time=_optional_datetime("start_date_time", obj.get("start_date_time")),
        end_date_time=_optional_datetime("end_date_time", obj.get("end_date_time")),
        energy_mix=None if energy_mix is None else dict(_plain(energy_mix)),
        last_updated=updated,
    )
    _check_prices(tariff)
    if (
        tariff.start_date_time is not None
        and tariff.end_date_time is not None
        and tariff.end_date_time <= tariff.start_date_time
    ):
        raise TariffError("end_date_time", "must be after start_date_time")
    return tariff


def _check_prices(tariff: Tariff) -> None:
    low, high = tariff.min_price, tariff.max_price
    if low is None or high is None:
        return
    if low.excl_vat > high.excl_vat:
        raise TariffError("min_price.excl_vat", "is above max_price.excl_vat")
    if low.incl_vat is not None and high.incl_vat is not None and low.incl_vat > high.incl_vat:
        raise TariffError("min_price.incl_vat", "is above max_price.incl_vat")


def _element(where: str, raw: Any, strict: bool) -> TariffElement:
    obj = _object(where, raw)
    if strict:
        _only(obj, where, _ELEMENT_KEYS)
    raw_components = obj.get("price_components")
    if not isinstance(raw_components, list) or not raw_components:
        raise TariffError(f"{where}.price_components", "must be a non-empty list")
    components = tuple(
        _component(f"{where}.price_components[{i}]", item, strict)
        for i, item in enumerate(raw_components)
    )
    raw_restrictions = obj.get("restrictions")
    restrictions = (
        None
        if raw_restrictions is None
        else _restrictions(f"{where}.restrictions", raw_restrictions, strict)
    )
    if restrictions is not None and restrictions.reservation is not None:
        for i, component in enumerate(components):
            if component.type not in (TariffDimensionType.FLAT, TariffDimensionType.TIME):
                raise TariffError(
                    f"{where}.price_components[{i}].type",
                    f"a reservation element may only have FLAT and TIME components,"
                    f" got {component.type.value}",
                )
    return TariffElement(price_components=components, restrictions=restrictions)


def _component(where: str, raw: Any, strict: bool) -> PriceComponent:
    obj = _object(where, raw)
    if strict:
        _only(obj, where, _COMPONENT_KEYS)
    vat = obj.get("vat")
    step = obj.get("step_size")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise TariffError(f"{where}.step_size", f"must be an integer >= 0, got {_shown(step)}")
    return PriceComponent(
        type=_enum(f"{where}.type", obj.get("type"), TariffDimensionType),
        price=_number(f"{where}.price", obj.get("price"), high=AMOUNT_MAX),
        vat=None if vat is None else _number(f"{where}.vat", vat, high=Decimal(100)),
        step_size=step,
    )


def _restrictions(where: str, raw: Any, strict: bool) -> TariffRestrictions:
    obj = _object(where, raw)
    if strict:
        _only(obj, where, _RESTRICTION_KEYS)

    def number(name: str) -> Decimal | None:
        value = obj.get(name)
        return None if value is None else _number(f"{where}.{name}", value)

    def seconds(name: str) -> int | None:
        value = obj.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise TariffError(f"{where}.{name}", f"must be seconds >= 0, got {_shown(value)}")
        return value

    days = obj.get("day_of_week", [])
    if not isinstance(days, list):
        raise TariffError(f"{where}.day_of_week", f"must be a list of days, got {_shown(days)}")
    reservation = obj.get("reservation")
    restrictions = TariffRestrictions(
        start_time=_clock(f"{where}.start_time", obj.get("start_time")),
        end_time=_clock(f"{where}.end_time", obj.get("end_time")),
        start_date=_date(f"{where}.start_date", obj.get("start_date")),
        end_date=_date(f"{where}.end_date", obj.get("end_date")),
        min_kwh=number("min_kwh"),
        max_kwh=number("max_kwh"),
        min_current=number("min_current"),
        max_current=number("max_current"),
        min_power=number("min_power"),
        max_power=number("max_power"),
        min_duration=seconds("min_duration"),
        max_duration=seconds("max_duration"),
        day_of_week=tuple(
            _enum(f"{where}.day_of_week[{i}]", day, DayOfWeek) for i, day in enumerate(days)
        ),
        reservation=None
        if reservation is None
        else _enum(f"{where}.reservation", reservation, ReservationRestrictionType),
    )
    for low, high in (
        ("min_kwh", "max_kwh"),
        ("min_current", "max_current"),
        ("min_power", "max_power"),
        ("min_duration", "max_duration"),
        ("start_date", "end_date"),
    ):
        low_value, high_value = getattr(restrictions, low), getattr(restrictions, high)
        if low_value is not None and high_value is not None and low_value >= high_value:
            # The range would be empty: the element could never apply, surely a mistake.
            raise TariffError(f"{where}.{low}", f"must be below {high} ({high_value})")
    return restrictions


def _display_text(where: str, raw: Any, strict: bool) -> DisplayText:
    obj = _object(where, raw)
    if strict:
        _only(obj, where, frozenset({"language", "text"}))
    return DisplayText(
        language=_text(f"{where}.language", obj.get("language"), 2, exact=True),
        text=_text(f"{where}.text", obj.get("text"), ALT_TEXT_MAX),
    )


def _optional_price(where: str, raw: Any, strict: bool) -> Price | None:
    if raw is None:
        return None
    return parse_price(where, raw, strict=strict)


def parse_price(where: str, raw: Any, *, strict: bool = False) -> Price:
    """An OCPI 2.2.1 Price object; `where` names it in errors."""
    obj = _object(where, raw)
    if strict:
        _only(obj, where, _PRICE_KEYS)
    incl = obj.get("incl_vat")
    price = Price(
        excl_vat=_number(f"{where}.excl_vat", obj.get("excl_vat"), high=AMOUNT_MAX),
        incl_vat=None if incl is None else _number(f"{where}.incl_vat", incl, high=AMOUNT_MAX),
    )
    if price.incl_vat is not None and price.incl_vat < price.excl_vat:
        raise TariffError(f"{where}.incl_vat", "must not be below excl_vat")
    return price


def _object(where: str, raw: Any) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise TariffError(where, f"must be an object, got {_shown(raw)}")
    return raw


def _only(obj: Mapping[str, Any], where: str, allowed: frozenset[str]) -> None:
    for key in obj:
        if key not in allowed:
            name = f"{where}.{key}" if where else str(key)
            raise TariffError(name, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _text(where: str, value: Any, max_length: int, *, exact: bool = False) -> str:
    if value is None:
        raise TariffError(where, "missing required field")
    if not isinstance(value, str) or not value.strip():
        raise TariffError(where, f"must be a non-empty string, got {_shown(value)}")
    if exact and len(value) != max_length:
        raise TariffError(where, f"must be {max_length} characters, got {value!r}")
    if len(value) > max_length:
        raise TariffError(where, f"must be at most {max_length} characters, got {len(value)}")
    if not value.isprintable() or (max_length <= ID_MAX and not value.isascii()):
        # Codes and ids are CiStrings (printable ASCII); display texts may be any language.
        raise TariffError(where, f"must be printable ASCII, got {value!r}")
    return value


def _currency(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise TariffError(where, f"must be an ISO 4217 code like EUR, got {_shown(value)}")
    return value


def _optional_url(where: str, value: Any) -> str | None:
    if value is None:
        return None
    text = _text(where, value, URL_MAX)
    if not text.startswith(("http://", "https://")):
        raise TariffError(where, f"must be an http(s) URL, got {text!r}")
    return text


def _enum(where: str, value: Any, kind: type[_E]) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise TariffError(where, f"must be one of {allowed}, got {_shown(value)}") from None


def _number(where: str, value: Any, *, high: Decimal | None = None) -> Decimal:
    """A non-negative finite number; floats through their shortest repr (0.1 -> "0.1")."""
    if value is None:
        raise TariffError(where, "missing required field")
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TariffError(where, f"must be a number, got {_shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise TariffError(where, f"must be a finite number, got {value!r}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise TariffError(where, f"must be a number, got {_shown(value)}") from None
    if not number.is_finite():
        raise TariffError(where, f"must be a finite number, got {value!r}")
    if number < 0:
        raise TariffError(where, f"must not be negative, got {value!r}")
    if high is not None and number > high:
        raise TariffError(where, f"must be at most {high}, got {value!r}")
    return number


def _clock(where: str, value: Any) -> time | None:
    if value is None:
        return None
    if isinstance(value, time) and not value.second and not value.microsecond:
        return value.replace(tzinfo=None)  # a TOML local time (08:00:00)
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        raise TariffError(where, f'must be a time "HH:MM" (00:00-23:59), got {_shown(value)}')
    return time(int(value[:2]), int(value[3:]))


def _date(where: str, value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # a TOML local date
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise TariffError(where, f'must be a date "YYYY-MM-DD", got {_shown(value)}')
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TariffError(where, f"is not a calendar date: {value!r}") from None


def _optional_datetime(where: str, value: Any) -> datetime | None:
    return None if value is None else _datetime(where, value)


def _datetime(where: str, value: Any) -> datetime:
    """RFC 3339; without a zone designator it is UTC (transport_and_format)."""
    if value is None:
        raise TariffError(where, "missing required field")
    if isinstance(value, datetime):
        parsed = value  # a TOML datetime
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise TariffError(where, f"must be an RFC 3339 date-time, got {value!r}") from None
    else:
        raise TariffError(where, f"must be an RFC 3339 date-time, got {_shown(value)}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 40 else f'"{value[:40]}…"'
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    if value is None:
        return "null"
    return repr(value)
