"""The [ocpi] configuration: a complete table parses, every error names its key, secrets stay
out of messages; and `evgw ocpi-token` issues a token A into the store."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config import ConfigError, parse_config
from gateway.ocpi.partners import PartnerRegistry, PartnerStatus
from gateway.store import Store

BASE: dict[str, Any] = {
    "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
    "chargers": [
        {"id": "CP-1", "profile": "generic", "host": "127.0.0.1"},
        {"id": "CP-2", "profile": "generic", "host": "127.0.0.1", "port": 503},
    ],
}
OCPI: dict[str, Any] = {
    "port": 8091,
    "public_url": "https://cpo.example.com/",
    "country_code": "NL",
    "party_id": "EVG",
    "business_name": "Depot",
    "location": {
        "id": "DEPOT-1",
        "address": "Harbour road 1",
        "city": "Rotterdam",
        "country": "NLD",
        "latitude": 51.9,
        "longitude": 4.48,
        "time_zone": "Europe/Amsterdam",
    },
    "chargers": {"CP-1": {"evse_id": "NL*EVG*E1", "capabilities": ["CREDIT_CARD_PAYABLE"]}},
    "partners": [
        {"name": "emsp-a", "roles": ["EMSP"], "token_a": "a-token-we-issued"},
        {
            "name": "hub",
            "roles": ["HUB"],
            "token_a_env": "EVGW_TEST_HUB_TOKEN",
            "versions_url": "https://hub.example/ocpi/versions",
            "raw_token": True,
        },
    ],
}


def problems_of(ocpi: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_config({**BASE, "ocpi": ocpi})
    return raised.value.problems


def test_a_complete_table_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVGW_TEST_HUB_TOKEN", "their-token-a")
    config = parse_config({**BASE, "ocpi": OCPI})
    section = config.ocpi
    assert section is not None
    assert section.public_url == "https://cpo.example.com"
    assert section.charger("CP-1").evse_id == "NL*EVG*E1"
    assert section.charger("CP-1").max_voltage is None
    hub = section.partners[1]
    assert hub.token_a == "their-token-a"
    assert hub.raw_token
    assert "their-token-a" not in repr(section)
    assert parse_config(BASE).ocpi is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"country_code": "nl"}, "ocpi.country_code: must be 2 upper-case letters"),
        ({"party_id": "TOOLONG"}, "ocpi.party_id: must be 3 upper-case letters or digits"),
        ({"public_url": "ftp://x"}, "ocpi.public_url: must be an http(s) URL"),
        ({"port": 70000}, "ocpi.port: must be an integer between 0 and 65535"),
        ({"typo": 1}, "ocpi.typo: unknown key"),
        ({"location": {**OCPI["location"], "country": "NL"}}, "ocpi.location.country:"),
        ({"location": {**OCPI["location"], "time_zone": "Mars/Base"}}, "ocpi.location.time_zone:"),
        ({"location": {**OCPI["location"], "latitude": 91}}, "ocpi.location.latitude:"),
        ({"chargers": {"CP-9": {}}}, "ocpi.chargers.CP-9: no [[chargers]] entry"),
        ({"chargers": {"CP-1": {"evse_id": "bad id"}}}, "ocpi.chargers.CP-1.evse_id:"),
        ({"chargers": {"CP-1": {"standard": "PLUG"}}}, "ocpi.chargers.CP-1.standard:"),
        (
            {"chargers": {"CP-1": {"evse_id": "DE*ABC*E1"}}},
            "ocpi.chargers.CP-1.evse_id: must start with our operator id NL*EVG*E",
        ),
        ({"chargers": {"CP-1": {"capabilities": ["FLY"]}}}, "ocpi.chargers.CP-1.capabilities:"),
        ({"partners": [{"name": "x", "roles": ["KING"]}]}, "ocpi.partners[0].roles:"),
        (
            {"partners": [{"name": "x", "versions_url": "https://p/versions"}]},
            "ocpi.partners[0].token_a: required with versions_url",
        ),
        (
            {"partners": [{"name": "x", "token_a": "has space"}]},
            "ocpi.partners[0].token_a: must be 1-64 printable ASCII",
        ),
        (
            {"partners": [{"name": "x", "token_a": "t", "token_a_env": "E"}]},
            "ocpi.partners[0].token_a_env: give only one of",
        ),
        ({"partners": [{"name": "x"}, {"name": "x"}]}, "ocpi.partners[1].name: duplicate"),
    ],
)
def test_errors_name_the_key(change: dict[str, Any], expected: str) -> None:
    ocpi = {**OCPI, "partners": OCPI["partners"][:1], **change}
    problems = problems_of(ocpi)
    assert any(problem.startswith(expected) for problem in problems), problems
    assert not any("a-token-we-issued" in problem for problem in problems)


def test_evse_ids_are_unique() -> None:
    chargers = {"CP-1": {"evse_id": "NL*EVG*E1"}, "CP-2": {"evse_id": "NLEVGE1"}}
    problems = problems_of({**OCPI, "partners": [], "chargers": chargers})
    assert problems == [
        "ocpi.chargers.CP-2.evse_id: 'NLEVGE1' is also the evse_id of charger 'CP-1'"
    ]


def test_missing_location_is_named() -> None:
    ocpi = {key: value for key, value in OCPI.items() if key not in ("location", "partners")}
    problems = problems_of(ocpi)
    assert any(p.startswith("ocpi.location: missing required table") for p in problems)


def test_ocpi_token_command_issues_a_stored_token(tmp_path: Path) -> None:
    store_path = tmp_path / "cli.sqlite3"
    config = tmp_path / "site.toml"
    config.write_text(
        f"""
[gateway]
store = "{store_path}"
[upstream]
url = "ws://127.0.0.1:9/ocpp"
[[chargers]]
id = "CP-1"
profile = "generic"
host = "127.0.0.1"
[ocpi]
public_url = "https://cpo.example.com"
country_code = "NL"
party_id = "EVG"
business_name = "Depot"
[ocpi.location]
id = "DEPOT-1"
address = "Harbour road 1"
city = "Rotterdam"
country = "NLD"
latitude = 51.9
longitude = 4.48
time_zone = "Europe/Amsterdam"
""",
        encoding="utf-8",
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["ocpi-token", "--config", str(config), "new-emsp"])
    assert code == 0
    printed = dict(line.split(":", 1) for line in out.getvalue().splitlines())
    assert printed["versions URL"].strip() == "https://cpo.example.com/ocpi/versions"
    token = printed["token A"].strip()

    async def check() -> None:
        store = await Store.open(store_path)
        try:
            registry = await PartnerRegistry.open(store)
            partner = registry.get("new-emsp")
            assert partner is not None
            assert partner.status is PartnerStatus.PENDING
            found = await registry.authenticate([token])
            assert found is not None
            assert found.token_a
        finally:
            await store.close()

    asyncio.run(check())
