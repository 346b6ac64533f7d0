"""OCPI Tariffs served from the tariff engine's model, and tariff changes pushed to a
registered eMSP at the next start (PUT for new or changed, DELETE for removed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.tariffs.model import Tariff, parse_tariff
from tests.ocpi.conftest import live_ocpi
from tests.ocpi.emsp_peer import EmspPeer


def tariff(tariff_id: str, price: float, last_updated: str) -> Tariff:
    raw: dict[str, Any] = {
        "country_code": "NL",
        "party_id": "EVG",
        "id": tariff_id,
        "currency": "EUR",
        "type": "REGULAR",
        "elements": [
            {"price_components": [{"type": "ENERGY", "price": price, "vat": 21, "step_size": 1}]}
        ],
        "last_updated": last_updated,
    }
    return parse_tariff(raw)


async def test_tariffs_served_and_changes_pushed(tmp_path: Path, peer: EmspPeer) -> None:
    first = [
        tariff("T1", 0.25, "2026-01-01T00:00:00Z"),
        tariff("T2", 0.30, "2026-02-01T00:00:00Z"),
    ]
    async with live_ocpi(tmp_path, store_name="t.sqlite3", tariffs=first) as live:
        assert (await peer.register_with(live.versions_url, live.token_a["emsp-a"])).status == 200
        listing = await peer.call("GET", live.module_url("tariffs"))
        assert [t["id"] for t in listing.data] == ["T1", "T2"]
        assert listing.data[0]["elements"][0]["price_components"][0]["price"] == 0.25
        assert listing.headers["X-Total-Count"] == "2"
        later = await peer.call(
            "GET", live.module_url("tariffs"), params={"date_from": "2026-01-15T00:00:00Z"}
        )
        assert [t["id"] for t in later.data] == ["T2"]
        assert (await peer.call("GET", live.module_url("tariffs") + "/T2")).data["id"] == "T2"
        assert (await peer.call("GET", live.module_url("tariffs") + "/T9")).status == 404
    second = [
        tariff("T1", 0.27, "2026-03-01T00:00:00Z"),  # changed
        tariff("T3", 0.10, "2026-03-01T00:00:00Z"),  # new; T2 is gone
    ]
    async with live_ocpi(tmp_path, store_name="t.sqlite3", tariffs=second):
        put_t1 = await peer.wait_for(
            lambda item: item.method == "PUT" and item.path.endswith("/tariffs/NL/EVG/T1")
        )
        assert put_t1.body["elements"][0]["price_components"][0]["price"] == 0.27
        await peer.wait_for(
            lambda item: item.method == "PUT" and item.path.endswith("/tariffs/NL/EVG/T3")
        )
        await peer.wait_for(
            lambda item: item.method == "DELETE" and item.path.endswith("/tariffs/NL/EVG/T2")
        )
    # Unchanged at the next start: nothing pushed again.
    pushed_before = len([i for i in peer.received if "/tariffs/" in i.path])
    async with live_ocpi(tmp_path, store_name="t.sqlite3", tariffs=second) as live:
        listing = await peer.call("GET", live.module_url("tariffs"))
        assert [t["id"] for t in listing.data] == ["T1", "T3"]
    assert len([i for i in peer.received if "/tariffs/" in i.path]) == pushed_before
