"""OCPI transport over real HTTP: 401 for missing/unknown tokens on every registered route,
malformed bodies answered with the spec's codes (never 5xx), request/correlation ids and
routing headers, 404/405 in the envelope, and pagination through many objects."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.ocpi import transport
from gateway.ocpi.partners import Endpoint, InterfaceRole, PartnerRegistry
from gateway.ocpi.server import Module, OcpiRequest, OcpiServer, Route
from gateway.ocpi.transport import Page
from gateway.store import Store
from tests.ocpi.conftest import LiveOcpi, RouteCase, live_ocpi, registered_routes
from tests.ocpi.emsp_peer import EmspPeer

ROUTES = registered_routes()


@pytest.fixture
async def two_partners(
    tmp_path: Path,
) -> AsyncIterator[tuple[LiveOcpi, EmspPeer, EmspPeer]]:
    """An eMSP and a hub, both registered with their own tokens."""
    emsp, hub = EmspPeer(), EmspPeer(country_code="BE", party_id="HUB", role="HUB")
    await emsp.start()
    await hub.start()
    try:
        async with live_ocpi(tmp_path, issued=("emsp-a", "hub"), chargers=1) as live:
            assert (
                await emsp.register_with(live.versions_url, live.token_a["emsp-a"])
            ).status == 200
            assert (await hub.register_with(live.versions_url, live.token_a["hub"])).status == 200
            yield live, emsp, hub
    finally:
        await emsp.stop()
        await hub.stop()


def test_every_module_is_registered() -> None:
    modules = {case.module for case in ROUTES}
    assert {"versions", "credentials", "locations", "tariffs", "hubclientinfo"} <= modules


@pytest.mark.parametrize("case", ROUTES, ids=str)
async def test_missing_or_unknown_token_is_401(
    case: RouteCase, two_partners: tuple[LiveOcpi, EmspPeer, EmspPeer]
) -> None:
    live, emsp, _ = two_partners
    url = live.base + case.path
    body: Any = {} if case.has_body else None
    attempts = {
        "missing": {},
        "unknown base64": {"Authorization": "Token " + base64.b64encode(b"nope").decode()},
        "unknown raw": {"Authorization": "Token not-a-token-we-issued"},
        "wrong scheme": {"Authorization": f"Bearer {emsp.token_to_cpo}"},
        "empty": {"Authorization": "Token "},
    }
    for name, headers in attempts.items():
        reply = await emsp.call(
            case.method, url, token=None, body=body, headers=headers or {"Authorization": ""}
        )
        assert reply.status == 401, (name, reply)
        assert reply.status_code == 2000, (name, reply.body)
        assert "timestamp" in reply.body, (name, reply.body)


@pytest.mark.parametrize("case", [c for c in ROUTES if not c.token_a], ids=str)
async def test_token_a_is_401_outside_versions_and_credentials(
    case: RouteCase, tmp_path: Path, peer: EmspPeer
) -> None:
    async with live_ocpi(tmp_path, chargers=1) as live:
        token_a = live.token_a["emsp-a"]
        body: Any = {} if case.has_body else None
        reply = await peer.call(case.method, live.base + case.path, token=token_a, body=body)
        assert reply.status == 401, reply


@pytest.mark.parametrize("case", [c for c in ROUTES if c.has_body], ids=str)
async def test_malformed_bodies_get_the_spec_codes_never_5xx(
    case: RouteCase, two_partners: tuple[LiveOcpi, EmspPeer, EmspPeer]
) -> None:
    live, emsp, hub = two_partners
    caller = hub if "HUB" in case.roles else emsp
    url = live.base + case.path
    not_json = await caller.call(
        case.method, url, raw_body=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400, not_json
    assert not_json.status_code == 2001, not_json
    empty = await caller.call(case.method, url, raw_body=b"")
    assert empty.status == 400, empty
    assert empty.status_code == 2001, empty
    wrong: Any
    for wrong in ([], {"unexpected": True}, "text", 12, {"token": 5, "url": [], "roles": "x"}):
        reply = await caller.call(case.method, url, body=wrong)
        assert reply.status == 200, (wrong, reply)
        assert reply.status_code == 2001, (wrong, reply)
        assert reply.body.get("status_message"), reply


async def test_ids_and_routing_headers(two_partners: tuple[LiveOcpi, EmspPeer, EmspPeer]) -> None:
    live, emsp, _ = two_partners
    headers = {
        "X-Request-ID": "req-1",
        "X-Correlation-ID": "corr-1",
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "EMS",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "EVG",
    }
    reply = await emsp.call("GET", live.module_url("locations"), headers=headers)
    assert reply.status == 200
    assert reply.headers["X-Request-ID"] == "req-1"
    assert reply.headers["X-Correlation-ID"] == "corr-1"
    assert reply.headers["OCPI-from-country-code"] == "NL"
    assert reply.headers["OCPI-to-party-id"] == "EMS"
    fresh = await emsp.call("GET", live.module_url("locations"))
    assert fresh.headers["X-Request-ID"]
    assert fresh.headers["X-Correlation-ID"]


async def test_unknown_path_and_method_in_the_envelope(
    two_partners: tuple[LiveOcpi, EmspPeer, EmspPeer],
) -> None:
    live, emsp, _ = two_partners
    missing = await emsp.call("GET", live.base + "/ocpi/2.2.1/nothing-here")
    assert missing.status == 404
    assert missing.status_code == 2000
    wrong = await emsp.call("DELETE", live.module_url("locations"))
    assert wrong.status == 405
    assert wrong.status_code == 2000
    unknown = await emsp.call("GET", live.module_url("locations") + "/NOPE")
    assert unknown.status == 404
    assert unknown.status_code == 2003


async def test_roles_separate_partners(two_partners: tuple[LiveOcpi, EmspPeer, EmspPeer]) -> None:
    live, emsp, hub = two_partners
    assert emsp.token_to_cpo != hub.token_to_cpo
    client_info = {
        "party_id": "ABC",
        "country_code": "BE",
        "role": "EMSP",
        "status": "CONNECTED",
        "last_updated": "2026-01-01T00:00:00Z",
    }
    url = live.module_url("hubclientinfo") + "/BE/ABC"
    denied = await emsp.call("PUT", url, body=client_info)
    assert denied.status == 403
    created = await hub.call("PUT", url, body=client_info)
    assert created.status == 201
    assert created.status_code == 1000
    updated = await hub.call("PUT", url, body={**client_info, "status": "OFFLINE"})
    assert updated.status == 200
    got = await hub.call("GET", url)
    assert got.data["status"] == "OFFLINE"
    mismatch = await hub.call("PUT", live.module_url("hubclientinfo") + "/BE/XYZ", body=client_info)
    assert mismatch.status == 200
    assert mismatch.status_code == 2001
    assert (await hub.call("GET", live.module_url("hubclientinfo") + "/NL/ZZZ")).status == 404


# --- pagination through many objects, over a module registered for the test -----------------

START = datetime(2026, 1, 1, tzinfo=UTC)
COUNT = 1000


@pytest.fixture
async def paged_server(tmp_path: Path) -> AsyncIterator[tuple[str, EmspPeer]]:
    store = await Store.open(tmp_path / "paged.sqlite3")
    partners = await PartnerRegistry.open(store)
    token = "test-token-c"
    partner = await partners.issue_token_a("reader")
    del partner
    reader = partners.get("reader")
    assert reader is not None
    await partners.registered_with(
        reader,
        token_in=token,
        token_out="unused",
        versions_url="http://127.0.0.1:1/versions",
        version="2.2.1",
        endpoints=[Endpoint("credentials", InterfaceRole.RECEIVER, "http://127.0.0.1:1/c")],
        roles=[{"role": "EMSP", "party_id": "EMS", "country_code": "DE"}],
    )
    # Listed newest first on purpose: the server must serve oldest first.
    objects = [(f"obj-{i:04d}", START + timedelta(minutes=i)) for i in reversed(range(COUNT))]

    async def listing(request: OcpiRequest) -> Page:
        assert request.page is not None
        return transport.paginate(
            objects,
            request.page,
            lambda o: o[1],
            lambda o: {"id": o[0], "last_updated": transport.format_datetime(o[1])},
        )

    server = OcpiServer(partners, public_url="http://127.0.0.1:0")
    server.register(
        Module(
            "things",
            (InterfaceRole.SENDER,),
            (Route("GET", "", listing, paginated=True, max_limit=250),),
        )
    )
    await server.start("127.0.0.1", 0)
    server.public_url = f"http://127.0.0.1:{server.port}"
    peer = EmspPeer()
    await peer.start()
    peer.token_to_cpo = token
    try:
        yield f"{server.public_url}/ocpi/2.2.1/things", peer
    finally:
        await peer.stop()
        await server.stop()
        await store.close()


async def crawl(
    peer: EmspPeer, url: str, params: dict[str, str] | None = None
) -> tuple[list[str], list[Any]]:
    ids: list[str] = []
    replies = []
    next_url: str | None = url
    first = True
    while next_url is not None:
        reply = await peer.call("GET", next_url, params=params if first else None)
        first = False
        assert reply.status == 200, reply
        assert reply.status_code == 1000, reply
        replies.append(reply)
        ids.extend(item["id"] for item in reply.data)
        link = reply.headers.get("Link")
        next_url = link.split(";")[0].strip("<>") if link else None
        assert len(replies) <= COUNT, "the Link chain does not end"
    return ids, replies


async def test_paging_through_many_objects_follows_link_headers(
    paged_server: tuple[str, EmspPeer],
) -> None:
    url, peer = paged_server
    ids, replies = await crawl(peer, url, {"limit": "100"})
    assert ids == [f"obj-{i:04d}" for i in range(COUNT)]  # oldest first, none twice
    assert len(replies) == 10
    assert all(r.headers["X-Total-Count"] == str(COUNT) for r in replies)
    assert all(r.headers["X-Limit"] == "100" for r in replies)
    assert "Link" not in replies[-1].headers


async def test_limit_is_capped_and_reported(paged_server: tuple[str, EmspPeer]) -> None:
    url, peer = paged_server
    reply = await peer.call("GET", url, params={"limit": "5000"})
    assert reply.headers["X-Limit"] == "250"
    assert len(reply.data) == 250
    default = await peer.call("GET", url)
    assert len(default.data) == int(default.headers["X-Limit"]) == 100


async def test_date_filters_are_kept_in_the_link(paged_server: tuple[str, EmspPeer]) -> None:
    url, peer = paged_server
    date_from = transport.format_datetime(START + timedelta(minutes=100))
    date_to = transport.format_datetime(START + timedelta(minutes=400))
    ids, replies = await crawl(
        peer, url, {"date_from": date_from, "date_to": date_to, "limit": "64"}
    )
    # date_from inclusive, date_to exclusive.
    assert ids == [f"obj-{i:04d}" for i in range(100, 400)]
    assert replies[0].headers["X-Total-Count"] == "300"
    assert "date_from=" in replies[0].headers["Link"]
    assert "date_to=" in replies[0].headers["Link"]


async def test_offset_beyond_the_end_and_bad_parameters(paged_server: tuple[str, EmspPeer]) -> None:
    url, peer = paged_server
    beyond = await peer.call("GET", url, params={"offset": "5000"})
    assert beyond.status == 200
    assert beyond.data == []
    assert "Link" not in beyond.headers
    for params in ({"offset": "-1"}, {"limit": "ten"}, {"date_from": "yesterday"}):
        bad = await peer.call("GET", url, params=params)
        assert bad.status == 200, (params, bad)
        assert bad.status_code == 2001, (params, bad)
