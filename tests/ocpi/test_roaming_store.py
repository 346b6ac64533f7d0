"""The roaming side's storage and logic on a real SQLite store, without HTTP: the whitelist
rule, the token registry, paging 1,000 sessions and 1,000 CDRs, CDR costs from the tariff
engine against hand-checked values, and a restart on the same file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.core.session import Session, SessionOrigin, StopReason
from gateway.core.site import Site
from gateway.ocpi.cdrs import CdrBook
from gateway.ocpi.roaming import TariffPricing
from gateway.ocpi.sessions import (
    MeterSample,
    SessionBook,
    SessionRecord,
    default_periods,
    session_points,
)
from gateway.ocpi.tokens import (
    AuthMethod,
    RealTimeAnswer,
    TokenKey,
    TokenRegistry,
    decide,
    id_tag_for,
    validate_token,
)
from gateway.ocpi.transport import OcpiError, PageParams
from gateway.store import Store
from gateway.tariffs.model import parse_tariff

EMSP = ("NL", "EMS")
OTHER_EMSP = ("DE", "OTH")
CPO = ("NL", "EVG")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Places:
    location_id = "DEPOT-1"

    def evse_uid(self, charger_id: str) -> str:
        return charger_id

    def cdr_location(self, charger_id: str) -> dict[str, Any]:
        return {
            "id": "DEPOT-1",
            "address": "Harbour road 1",
            "city": "Rotterdam",
            "country": "NLD",
            "coordinates": {"latitude": "51.900000", "longitude": "4.480000"},
            "evse_uid": charger_id,
            "evse_id": charger_id,
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        }


def token(uid: str = "04A1B2C3", whitelist: str = "ALWAYS", **changes: Any) -> dict[str, Any]:
    body = {
        "country_code": EMSP[0],
        "party_id": EMSP[1],
        "uid": uid,
        "type": "RFID",
        "contract_id": "NL-EMS-C00001-1",
        "issuer": "EMSP Ltd",
        "valid": True,
        "whitelist": whitelist,
        "last_updated": "2026-03-01T08:00:00Z",
    }
    body.update(changes)
    return body


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "evgw.sqlite3")
    yield opened
    await opened.close()


def books(store: Store, pricing: TariffPricing | None = None) -> tuple[SessionBook, CdrBook]:
    sessions = SessionBook(store, Site(), party=CPO, places=Places(), pricing=pricing)
    return sessions, CdrBook(store, sessions, Places())


# --- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("whitelist", "answer", "accepted"),
    [
        ("ALWAYS", None, True),
        ("ALLOWED", None, True),
        ("ALLOWED_OFFLINE", RealTimeAnswer(True, {"allowed": "ALLOWED"}), True),
        ("ALLOWED_OFFLINE", RealTimeAnswer(True, {"allowed": "BLOCKED"}), False),
        ("ALLOWED_OFFLINE", RealTimeAnswer(True, None), False),
        ("ALLOWED_OFFLINE", RealTimeAnswer(False), True),
        ("NEVER", RealTimeAnswer(True, {"allowed": "ALLOWED"}), True),
        ("NEVER", RealTimeAnswer(True, {"allowed": "NO_CREDIT"}), False),
        ("NEVER", RealTimeAnswer(False), False),
        ("NEVER", None, False),
    ],
)
def test_whitelist_rule(whitelist: str, answer: RealTimeAnswer | None, accepted: bool) -> None:
    assert decide(token(whitelist=whitelist), answer) is accepted


@pytest.mark.parametrize("whitelist", ["ALWAYS", "ALLOWED", "ALLOWED_OFFLINE", "NEVER"])
def test_an_invalid_token_is_refused_whatever_the_whitelist(whitelist: str) -> None:
    allowed = RealTimeAnswer(True, {"allowed": "ALLOWED"})
    assert decide(token(whitelist=whitelist, valid=False), allowed) is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"uid": "x" * 37}, "Token.uid"),
        ({"type": "CARD"}, "Token.type"),
        ({"whitelist": "SOMETIMES"}, "Token.whitelist"),
        ({"valid": "yes"}, "Token.valid"),
        ({"last_updated": "yesterday"}, "Token.last_updated"),
        ({"contract_id": None}, "Token.contract_id"),
    ],
)
def test_a_malformed_token_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(OcpiError) as raised:
        validate_token(token(**change), partial=False)
    assert raised.value.status_code == 2001
    assert raised.value.message.startswith(field)


def test_long_uids_become_ocpp_sized_identifiers() -> None:
    assert id_tag_for(token(uid="04A1B2C3")) == "04A1B2C3"
    app = token(uid="bdf21bce-fc97-11e8-8eb2-f2801f1b9fd1", type="APP_USER")
    tag = id_tag_for(app)
    assert len(tag) == 20
    assert tag == id_tag_for(dict(app))
    assert tag != id_tag_for({**app, "uid": "bdf21bce-fc97-11e8-8eb2-f2801f1b9fd2"})


async def test_tokens_are_stored_per_partner_and_found_by_reader_uid(store: Store) -> None:
    registry = TokenRegistry(store)
    key = TokenKey(*EMSP, "04A1B2C3")
    assert await registry.put(key, token()) is True
    assert await registry.put(key, token(whitelist="NEVER")) is False
    other = TokenKey(*OTHER_EMSP, "04A1B2C3")
    await registry.put(other, token(country_code="DE", party_id="OTH", valid=False))
    found = await registry.find("04a1b2c3")
    assert found is not None
    assert (found["country_code"], found["whitelist"]) == ("NL", "NEVER")
    patched = await registry.patch(key, {"valid": False, "last_updated": "2026-03-02T08:00:00Z"})
    assert patched is not None
    assert patched["valid"] is False
    assert patched["uid"] == "04A1B2C3"
    assert await registry.patch(TokenKey(*EMSP, "UNKNOWN"), {"valid": False}) is None
    assert await registry.find("nobody") is None
    assert await registry.count() == 2


# --- sessions and CDRs ------------------------------------------------------------------------


async def insert_sessions(store: Store, count: int, owner: tuple[str, str]) -> list[str]:
    """`count` ended sessions owned by `owner`, one transaction (not 1,000 charges)."""
    rows = []
    ocpi_rows = []
    ids = []
    for index in range(count):
        start = T0 + timedelta(minutes=index)
        session_id = f"{owner[1]}-{index:05d}"
        ids.append(session_id)
        rows.append(
            (
                session_id,
                f"CP-{index % 3}",
                1,
                f"TAG{index}",
                "Local",
                start.isoformat(),
                1000.0 * index,
                (start + timedelta(minutes=30)).isoformat(),
                1000.0 * index + 5500.0,
                "EVDisconnected",
            )
        )
        ocpi_rows.append(
            (
                session_id,
                owner[0],
                owner[1],
                f'{{"country_code":"{owner[0]}","party_id":"{owner[1]}","uid":"TAG{index}",'
                f'"type":"RFID","contract_id":"C{index}"}}',
                "WHITELIST",
                (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )

    def write(db: sqlite3.Connection) -> None:
        db.executemany(
            "INSERT INTO sessions (id, charger_id, connector_id, id_tag, origin, started_at,"
            " meter_start_wh, stopped_at, meter_stop_wh, stop_reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        db.executemany(
            "INSERT INTO ocpi_sessions (session_id, country_code, party_id, cdr_token,"
            " auth_method, last_updated) VALUES (?, ?, ?, ?, ?, ?)",
            ocpi_rows,
        )

    await store.write(write)
    return ids


async def crawl(fetch: Any, params: PageParams) -> list[dict[str, Any]]:
    """Follow pages the way a partner follows Link headers."""
    seen: list[dict[str, Any]] = []
    offset = params.offset
    while True:
        page = await fetch(PageParams(offset, params.limit, params.date_from, params.date_to))
        seen.extend(page.items)
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return seen


async def test_paging_1000_sessions_and_their_cdrs(store: Store) -> None:
    sessions, cdrs = books(store)
    ids = await insert_sessions(store, 1000, EMSP)
    await insert_sessions(store, 20, OTHER_EMSP)
    assert await cdrs.catch_up() == 1020

    page = await sessions.page([EMSP], PageParams(0, 100))
    assert (page.total, len(page.items)) == (1000, 100)
    every = await crawl(lambda p: sessions.page([EMSP], p), PageParams(0, 100))
    assert [s["id"] for s in every] == ids
    assert all(s["status"] == "COMPLETED" and s["kwh"] == 5.5 for s in every)
    assert {s["cdr_token"]["party_id"] for s in every} == {"EMS"}

    cdr_list = await crawl(lambda p: cdrs.page([EMSP], p), PageParams(0, 250))
    assert [c["session_id"] for c in cdr_list] == ids
    assert all(c["total_energy"] == 5.5 and c["total_time"] == 0.5 for c in cdr_list)

    # date_from inclusive, date_to exclusive, on last_updated (the sessions' ends).
    window = PageParams(0, 1000, T0 + timedelta(minutes=30 + 100), T0 + timedelta(minutes=30 + 200))
    assert [s["id"] for s in (await sessions.page([EMSP], window)).items] == ids[100:200]
    assert (await cdrs.page([EMSP], window)).total == 100
    # Nobody sees another party's sessions.
    assert (await sessions.page([OTHER_EMSP], PageParams(0, 100))).total == 20
    assert (await sessions.page([], PageParams(0, 100))).total == 0


async def test_cdrs_are_immutable(store: Store) -> None:
    sessions, cdrs = books(store)
    [session_id] = await insert_sessions(store, 1, EMSP)
    record = await sessions.record(session_id)
    assert record is not None
    first = await cdrs.session_ended(record)
    assert first is not None
    changed = SessionRecord(
        record.session,
        record.owner,
        {**record.cdr_token, "uid": "CHANGED"},
        record.auth_method,
        None,
        record.last_updated,
    )
    again = await cdrs.session_ended(changed)
    assert again == first
    assert (await cdrs.page([EMSP], PageParams(0, 10))).total == 1


TARIFF = {
    "country_code": "NL",
    "party_id": "EVG",
    "id": "AC-STANDARD",
    "currency": "EUR",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 1.00, "vat": 21.0, "step_size": 1}]},
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.30, "vat": 21.0, "step_size": 1},
                {"type": "TIME", "price": 2.00, "vat": 21.0, "step_size": 1},
            ]
        },
        {
            "price_components": [
                {"type": "PARKING_TIME", "price": 6.00, "vat": 21.0, "step_size": 1}
            ]
        },
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


async def charged_session(store: Store, sessions: SessionBook) -> SessionRecord:
    """09:00-10:30 UTC: 22 kWh in the first hour at 22 kW, then 30 minutes parked."""
    session = Session(
        id="priced-1",
        charger_id="CP-1",
        connector_id=1,
        id_tag="04A1B2C3",
        origin=SessionOrigin.LOCAL,
        started_at=T0,
        meter_start_wh=100_000.0,
    )
    await store.record_session_started(session)
    record = SessionRecord(
        session,
        EMSP,
        {
            "country_code": "NL",
            "party_id": "EMS",
            "uid": "04A1B2C3",
            "type": "RFID",
            "contract_id": "NL-EMS-C00001-1",
        },
        AuthMethod.WHITELIST.value,
        None,
        T0,
    )
    await sessions.save_record(record)
    # Sample and hold: each sample's state lasts until the next one; the car stops drawing
    # at 10:00 (the sample then shows 0 W).
    samples = [
        MeterSample(T0 + timedelta(minutes=m), 100_000.0 + 22_000.0 * m / 60, 22_000.0, 96.0)
        for m in range(10, 51, 10)
    ] + [MeterSample(T0 + timedelta(minutes=m), 122_000.0, 0.0, 0.0) for m in (60, 70, 80)]
    for sample in samples:
        await sessions._save_sample(session.id, sample)
    ended = session.ended(T0 + timedelta(minutes=90), 122_000.0, StopReason.EV_DISCONNECTED)
    await store.record_session_ended(ended)
    found = await sessions.record(session.id)
    assert found is not None
    return found


async def test_cdr_costs_match_hand_checked_tariff_values(store: Store) -> None:
    tariff = parse_tariff(TARIFF)
    pricing = TariffPricing({"CP-1": [tariff]}, ZoneInfo("Europe/Amsterdam"))
    sessions, cdrs = books(store, pricing)
    record = await charged_session(store, sessions)
    cdr = await cdrs.session_ended(record)
    assert cdr is not None
    # By hand: start fee 1.00; 22 kWh x 0.30 = 6.60; 1 h charging x 2.00 = 2.00;
    # 0.5 h parked x 6.00 = 3.00; total 12.60 excl. VAT, x 1.21 = 15.246 -> 15.25 incl.
    assert cdr["total_fixed_cost"] == {"excl_vat": 1.0, "incl_vat": 1.21}
    assert cdr["total_energy_cost"] == {"excl_vat": 6.6, "incl_vat": 7.99}
    assert cdr["total_time_cost"] == {"excl_vat": 2.0, "incl_vat": 2.42}
    assert cdr["total_parking_cost"] == {"excl_vat": 3.0, "incl_vat": 3.63}
    assert cdr["total_cost"]["excl_vat"] == 12.6
    assert cdr["total_cost"]["incl_vat"] == pytest.approx(15.25, abs=0.011)
    assert cdr["total_energy"] == 22.0
    assert cdr["total_time"] == 1.5
    assert cdr["total_parking_time"] == 0.5
    assert cdr["currency"] == "EUR"
    assert cdr["tariffs"][0]["id"] == "AC-STANDARD"
    assert cdr["cdr_location"]["evse_uid"] == "CP-1"
    kinds = [{d["type"] for d in p["dimensions"]} for p in cdr["charging_periods"]]
    assert len(kinds) == 2
    assert {"ENERGY", "TIME"} <= kinds[0]
    assert "PARKING_TIME" not in kinds[0]
    assert {"ENERGY", "PARKING_TIME"} <= kinds[1]
    assert all(p["tariff_id"] == "AC-STANDARD" for p in cdr["charging_periods"])


def test_periods_without_a_tariff_split_charging_from_parking() -> None:
    samples = [
        MeterSample(T0 + timedelta(minutes=30), 11_000.0, 22_000.0, 96.0),
        MeterSample(T0 + timedelta(minutes=60), 22_000.0, 0.0, 0.0),
        MeterSample(T0 + timedelta(minutes=90), 22_000.0, 0.0, 0.0),
    ]
    end = MeterSample(T0 + timedelta(minutes=120), 22_000.0, 0.0, 0.0)
    periods = default_periods(session_points(T0, 0.0, samples, end), UTC)
    assert [p["start_date_time"] for p in periods] == [
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
    ]
    volumes = [{d["type"]: d["volume"] for d in p["dimensions"]} for p in periods]
    assert (volumes[0]["ENERGY"], volumes[0]["TIME"]) == (22, 1)
    assert "PARKING_TIME" not in volumes[0]
    assert (volumes[1]["ENERGY"], volumes[1]["PARKING_TIME"]) == (0, 1)
    assert "TIME" not in volumes[1]


def test_a_session_of_no_duration_still_has_one_period() -> None:
    start = MeterSample(T0, 5_000.0, 0.0, 0.0)
    periods = default_periods(session_points(T0, 5_000.0, [], start), UTC)
    assert len(periods) == 1
    assert periods[0]["start_date_time"] == "2026-03-02T09:00:00Z"


async def test_sessions_and_cdrs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "evgw.sqlite3"
    store = await Store.open(path)
    sessions, cdrs = books(store)
    ids = await insert_sessions(store, 30, EMSP)
    await TokenRegistry(store).put(TokenKey(*EMSP, "04A1B2C3"), token())
    await cdrs.catch_up()
    before_sessions = (await sessions.page([EMSP], PageParams(0, 100))).items
    before_cdrs = (await cdrs.page([EMSP], PageParams(0, 100))).items
    await store.close()

    reopened = await Store.open(path)
    try:
        sessions, cdrs = books(reopened)
        assert await cdrs.catch_up() == 0
        assert (await sessions.page([EMSP], PageParams(0, 100))).items == before_sessions
        assert (await cdrs.page([EMSP], PageParams(0, 100))).items == before_cdrs
        assert [s["id"] for s in before_sessions] == ids
        assert await TokenRegistry(reopened).get(TokenKey(*EMSP, "04A1B2C3")) == token()
    finally:
        await reopened.close()


async def test_cdr_periods_are_cut_where_a_time_of_day_price_changes(store: Store) -> None:
    # 10:30-11:00 local (Amsterdam, UTC+1 in March) energy costs 0.50 instead of 0.30.
    peak = {
        "price_components": [{"type": "ENERGY", "price": 0.50, "vat": 21.0, "step_size": 1}],
        "restrictions": {"start_time": "10:30", "end_time": "11:00"},
    }
    tariff = parse_tariff({**TARIFF, "elements": [peak, *TARIFF["elements"]]})
    pricing = TariffPricing({"CP-1": [tariff]}, ZoneInfo("Europe/Amsterdam"))
    sessions, cdrs = books(store, pricing)
    record = await charged_session(store, sessions)
    cdr = await cdrs.session_ended(record)
    assert cdr is not None
    # By hand: 22 kWh evenly over 10:00-11:00 local: 11 kWh x 0.30 + 11 kWh x 0.50 = 8.80;
    # 1 h x 2.00; 0.5 h parked x 6.00; start 1.00: 14.80 excl. VAT.
    assert cdr["total_energy_cost"]["excl_vat"] == 8.8
    assert cdr["total_cost"]["excl_vat"] == 14.8
    starts = [p["start_date_time"] for p in cdr["charging_periods"]]
    assert starts == ["2026-03-02T09:00:00Z", "2026-03-02T09:30:00Z", "2026-03-02T10:00:00Z"]
