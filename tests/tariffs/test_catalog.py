"""`[[tariffs]]` in the gateway configuration (inline and file forms), its checks, and the
choice of a charger's tariff at session start."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, load_config, parse_config
from gateway.tariffs.catalog import select_tariff
from gateway.tariffs.model import Tariff, TariffType, parse_tariff

SITE = """
[upstream]
url = "ws://127.0.0.1:9000/ocpp"

[[chargers]]
id = "CP-1"
host = "192.0.2.10"

[[chargers]]
id = "CP-2"
host = "192.0.2.11"

[ocpi]
country_code = "NL"
party_id = "EVG"
business_name = "Test depot"

[ocpi.location]
id = "DEPOT-1"
address = "Harbour road 1"
city = "Rotterdam"
country = "NLD"
latitude = 51.9
longitude = 4.48
time_zone = "Europe/Amsterdam"

[ocpi.chargers.CP-1]
tariff_ids = ["AC-STANDARD", "AC-CARD"]
"""

INLINE = """
[[tariffs]]
id = "AC-STANDARD"
currency = "EUR"
type = "REGULAR"
min_price = { excl_vat = 0.50, incl_vat = 0.61 }
tariff_alt_text = [{ language = "en", text = "0.30 EUR/kWh, parking 3 EUR/h after 4 h" }]

[[tariffs.elements]]
price_components = [
  { type = "FLAT", price = 0.50, vat = 21.0, step_size = 1 },
  { type = "ENERGY", price = 0.30, vat = 21.0, step_size = 1 },
]

[[tariffs.elements]]
price_components = [{ type = "PARKING_TIME", price = 3.00, vat = 21.0, step_size = 60 }]
restrictions = { min_duration = 14400, start_time = "08:00", end_time = 20:00:00 }
"""

CARD = {
    "id": "AC-CARD",
    "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": 0.39, "vat": 21, "step_size": 1}]}
    ],
    "last_updated": "2025-01-01T00:00:00Z",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_inline_and_file_tariffs_load(tmp_path: Path) -> None:
    (tmp_path / "tariffs").mkdir()
    (tmp_path / "tariffs" / "card.json").write_text(json.dumps(CARD), encoding="utf-8")
    path = write(tmp_path, SITE + INLINE + '\n[[tariffs]]\nfile = "tariffs/card.json"\n')
    os.utime(path, (1_700_000_000, 1_700_000_000))
    config = load_config(path)
    standard, card = config.tariffs
    assert (standard.id, standard.country_code, standard.party_id) == ("AC-STANDARD", "NL", "EVG")
    assert standard.min_price is not None
    assert standard.min_price.incl_vat == Decimal("0.61")
    assert standard.elements[0].price_components[1].price == Decimal("0.3")
    # No last_updated inline: the configuration file's modification time.
    assert standard.last_updated == datetime.fromtimestamp(1_700_000_000, UTC)
    parking = standard.elements[1].restrictions
    assert parking is not None
    assert parking.end_time == time(20, 0)  # a TOML time works as well as "20:00"
    assert card.type == TariffType.AD_HOC_PAYMENT
    assert card.last_updated == datetime(2025, 1, 1, tzinfo=UTC)
    assert card.elements[0].price_components[0].price == Decimal("0.39")


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return caught.value.problems


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            INLINE.replace('type = "REGULAR"', 'type = "CHEAP"'),
            "tariffs[0].type: must be one of AD_HOC_PAYMENT",
        ),
        (
            INLINE.replace("step_size = 60", "step_size = 1.5"),
            "tariffs[0].elements[1].price_components[0].step_size: must be an integer",
        ),
        (
            INLINE.replace('start_time = "08:00"', 'start_time = "8:00"'),
            'tariffs[0].elements[1].restrictions.start_time: must be a time "HH:MM"',
        ),
        (
            INLINE.replace("currency =", "curency ="),
            "tariffs[0].curency: unknown field",
        ),
        (
            INLINE.replace('id = "AC-STANDARD"', 'id = "AC-STANDARD"\nparty_id = "XYZ"'),
            "tariffs[0].party_id: tariff 'AC-STANDARD' belongs to NL/XYZ, but [ocpi] is NL/EVG",
        ),
        (
            INLINE + INLINE,
            "tariffs[1].id: duplicate tariff id 'AC-STANDARD'",
        ),
        (
            '[[tariffs]]\nfile = "missing.json"\n',
            "tariffs[0].file: cannot read",
        ),
        (
            '[[tariffs]]\nfile = "t.json"\nid = "x"\n',
            "tariffs[0].id: not with file",
        ),
        (
            "tariffs = 3\n",
            "tariffs: must be an array of tables [[tariffs]]",
        ),
    ],
)
def test_bad_tariff_configuration_names_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    # A bare key must come before the tables, or TOML puts it into the last one.
    text = extra + SITE if extra.startswith("tariffs =") else SITE + extra
    problems = problems_of(tmp_path, text)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_bad_json_file_names_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    problems = problems_of(tmp_path, SITE + '[[tariffs]]\nfile = "bad.json"\n')
    assert any(p.startswith("tariffs[0].file: ") and "not valid JSON" in p for p in problems)
    broken = {**CARD, "currency": "eur"}
    (tmp_path / "broken.json").write_text(json.dumps([CARD, broken]), encoding="utf-8")
    problems = problems_of(tmp_path, SITE + '[[tariffs]]\nfile = "broken.json"\n')
    assert any(
        p.startswith("tariffs[0] (") and "item 1).currency: must be an ISO 4217 code" in p
        for p in problems
    ), problems


def test_charger_naming_an_undefined_tariff(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, SITE + INLINE)
    assert problems == [
        "ocpi.chargers.CP-1.tariff_ids: unknown tariff 'AC-CARD' (defined: AC-STANDARD)"
    ]


def test_two_tariffs_of_one_type_at_once_on_a_charger(tmp_path: Path) -> None:
    regular_card = json.dumps({**CARD, "type": "REGULAR"})
    (tmp_path / "card.json").write_text(regular_card, encoding="utf-8")
    problems = problems_of(tmp_path, SITE + INLINE + '[[tariffs]]\nfile = "card.json"\n')
    assert len(problems) == 1
    assert problems[0].startswith(
        "ocpi.chargers.CP-1.tariff_ids: tariffs 'AC-STANDARD' and 'AC-CARD' are both REGULAR"
    )
    # Successive validity windows are fine: the old tariff's last valid instant (its
    # end_date_time) comes before the new one's start.
    windowed = {**CARD, "type": "REGULAR", "start_date_time": "2030-01-01T00:00:00Z"}
    (tmp_path / "card.json").write_text(json.dumps(windowed), encoding="utf-8")
    ending = INLINE.replace(
        'type = "REGULAR"', 'type = "REGULAR"\nend_date_time = "2029-12-31T23:59:59Z"'
    )
    config = load_config(write(tmp_path, SITE + ending + '[[tariffs]]\nfile = "card.json"\n'))
    assert [t.id for t in config.tariffs] == ["AC-STANDARD", "AC-CARD"]
    # Both are valid at an instant that ends one and starts the other.
    touching = ending.replace("2029-12-31T23:59:59Z", "2030-01-01T00:00:00Z")
    problems = problems_of(tmp_path, SITE + touching + '[[tariffs]]\nfile = "card.json"\n')
    assert "are both REGULAR and valid at the same time" in problems[0]


def test_local_time_restrictions_need_the_site_time_zone() -> None:
    document: dict[str, Any] = {
        "upstream": {"url": "ws://127.0.0.1:9000/ocpp"},
        "chargers": [{"id": "CP-1", "host": "192.0.2.10"}],
        "tariffs": [
            {
                "id": "NIGHT",
                "country_code": "NL",
                "party_id": "EVG",
                "currency": "EUR",
                "elements": [
                    {
                        "price_components": [{"type": "ENERGY", "price": 0.2, "step_size": 1}],
                        "restrictions": {"start_time": "22:00", "end_time": "06:00"},
                    }
                ],
            }
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    assert caught.value.problems == [
        "tariffs[0].elements: tariff 'NIGHT' has local time, date or weekday restrictions,"
        " which need the site's time zone ([ocpi.location] time_zone)"
    ]
    # Without local-time restrictions no time zone is needed.
    del document["tariffs"][0]["elements"][0]["restrictions"]
    assert parse_config(document).tariffs[0].id == "NIGHT"


def test_select_tariff_by_type_and_validity() -> None:
    def make(tariff_id: str, kind: str | None, **window: str) -> Tariff:
        raw: dict[str, Any] = {**CARD, "country_code": "NL", "party_id": "EVG", "id": tariff_id}
        raw.pop("type")
        if kind is not None:
            raw["type"] = kind
        return parse_tariff({**raw, **window})

    old = make("OLD", "REGULAR", end_date_time="2025-07-01T00:00:00Z")
    new = make("NEW", "REGULAR", start_date_time="2025-07-01T00:00:00Z")
    card = make("CARD", "AD_HOC_PAYMENT")
    anyone = make("ANY", None)
    tariffs = [old, new, card, anyone]
    june = datetime(2025, 6, 15, tzinfo=UTC)
    august = datetime(2025, 8, 1, tzinfo=UTC)
    assert select_tariff([old], august) is None
    assert select_tariff(tariffs, june) is old
    assert select_tariff(tariffs, august) is new
    assert select_tariff(tariffs, june, TariffType.AD_HOC_PAYMENT) is card
    assert select_tariff(tariffs, june, TariffType.PROFILE_GREEN) is anyone
