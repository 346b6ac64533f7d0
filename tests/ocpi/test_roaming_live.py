"""Sessions, CDRs, tokens, commands and charging profiles end to end: a real gateway (its OCPI
server on loopback, simulated Modbus chargers, OCPP stations connected to a central system
built on the `ocpp` package) and an eMSP peer with its own HTTP server that registered with
it. The peer pushes tokens, drivers swipe them at the simulated chargers, the peer sends
commands and receives the CommandResults, sessions and CDRs."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.config import CircuitSection
from gateway.core.status import ConnectorStatus
from gateway.ocpi.config import OcpiChargerSection
from gateway.ocpi.roaming import Roaming
from gateway.ocpi.tokens import id_tag_for
from gateway.ocpi.transport import PageParams
from gateway.tariffs.model import parse_tariff
from tests.ocpi.conftest import LiveOcpi, live_ocpi, until
from tests.ocpi.emsp_peer import VERSION, EmspPeer, Received

CPO_PATH = "/NL/EVG/"


@dataclasses.dataclass
class AuthorizingPeer(EmspPeer):
    """The test eMSP, also answering real-time authorizations: `allowed` maps a token uid to
    its AllowedType (a uid missing from it is unknown: 404 with 2004)."""

    allowed: dict[str, str] = dataclasses.field(default_factory=dict)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        answer = await super()._handle(request)
        tail = request.match_info["tail"]
        if (
            answer.status == 200
            and request.method == "POST"
            and tail.startswith(f"{VERSION}/tokens/")
            and tail.endswith("/authorize")
        ):
            uid = tail.split("/")[2]
            if uid not in self.allowed:
                return web.json_response(
                    {"status_code": 2004, "timestamp": "2026-01-01T00:00:00Z"}, status=404
                )
            info = {
                "allowed": self.allowed[uid],
                "token": self.token(uid, "NEVER"),
                "authorization_reference": f"AUTH-{uid}",
            }
            return web.json_response(
                {"data": info, "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}
            )
        return answer

    def token(self, uid: str, whitelist: str, **changes: Any) -> dict[str, Any]:
        body = {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": uid,
            "type": "RFID",
            "contract_id": f"DE-EMS-{uid}",
            "issuer": "Test eMSP",
            "valid": True,
            "whitelist": whitelist,
            "last_updated": "2026-03-01T08:00:00Z",
        }
        body.update(changes)
        return body

    def token_url(self, uid: str) -> str:
        return f"{self.cpo_endpoints['tokens']}/{self.country_code}/{self.party_id}/{uid}"

    async def push_token(self, uid: str, whitelist: str, **changes: Any) -> None:
        reply = await self.call(
            "PUT", self.token_url(uid), body=self.token(uid, whitelist, **changes)
        )
        assert reply.status in (200, 201), reply
        assert reply.status_code == 1000, reply


@pytest.fixture
async def emsp() -> AsyncIterator[AuthorizingPeer]:
    peer = AuthorizingPeer()
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@pytest.fixture
async def live(tmp_path: Path, emsp: AuthorizingPeer) -> AsyncIterator[LiveOcpi]:
    async with live_ocpi(tmp_path) as running:
        await register(running, emsp)
        yield running


async def register(live: LiveOcpi, peer: EmspPeer) -> None:
    reply = await peer.register_with(live.versions_url, live.token_a["emsp-a"])
    assert reply.status == 200, reply
    assert reply.status_code == 1000, reply


def roaming_of(live: LiveOcpi) -> Roaming:
    assert live.gateway.ocpi is not None
    shared = live.gateway.ocpi.context.shared["roaming"]
    assert isinstance(shared, Roaming)
    return shared


def session_put(session_id: str | None = None, status: str | None = None) -> Any:
    def matches(item: Received) -> bool:
        if item.method != "PUT" or f"/{VERSION}/sessions{CPO_PATH}" not in item.path:
            return False
        if session_id is not None and not item.path.endswith(session_id):
            return False
        return status is None or item.body.get("status") == status

    return matches


def cdr_post(session_id: str) -> Any:
    return lambda item: (
        item.method == "POST"
        and item.path.endswith(f"/{VERSION}/cdrs")
        and item.body.get("session_id") == session_id
    )


def posted_to(path: str) -> Any:
    return lambda item: item.method == "POST" and item.path == path


async def refused(caplog: pytest.LogCaptureFixture, charger_id: str, tag: str) -> None:
    """Wait until the site has applied a refusal of `tag` at `charger_id`."""

    def seen() -> bool:
        return any(
            record.getMessage()
            in ("identifier rejected", "identifier refused: the connector is reserved for another")
            and getattr(record, "charger_id", None) == charger_id
            for record in caplog.records
        )

    await until(seen)


# --- tokens and swipes ------------------------------------------------------------------------


async def test_tokens_receiver_put_patch_get(live: LiveOcpi, emsp: AuthorizingPeer) -> None:
    await emsp.push_token("CAFE0001", "ALWAYS")
    got = await emsp.call("GET", emsp.token_url("CAFE0001"))
    assert got.status == 200
    assert got.data == emsp.token("CAFE0001", "ALWAYS")
    again = await emsp.call("PUT", emsp.token_url("CAFE0001"), body=emsp.token("CAFE0001", "NEVER"))
    assert (again.status, again.status_code) == (200, 1000)
    patched = await emsp.call(
        "PATCH",
        emsp.token_url("CAFE0001"),
        body={"valid": False, "last_updated": "2026-03-02T08:00:00Z"},
    )
    assert (patched.status, patched.status_code) == (200, 1000)
    got = await emsp.call("GET", emsp.token_url("CAFE0001"))
    assert (got.data["valid"], got.data["whitelist"]) == (False, "NEVER")

    unknown = await emsp.call("GET", emsp.token_url("NOBODY"))
    assert (unknown.status, unknown.status_code) == (404, 2004)
    patch_unknown = await emsp.call(
        "PATCH",
        emsp.token_url("NOBODY"),
        body={"valid": False, "last_updated": "2026-03-02T08:00:00Z"},
    )
    assert patch_unknown.status == 404
    wrong_uid = await emsp.call(
        "PUT", emsp.token_url("OTHER"), body=emsp.token("CAFE0001", "ALWAYS")
    )
    assert (wrong_uid.status, wrong_uid.status_code) == (200, 2001)
    malformed = await emsp.call(
        "PUT", emsp.token_url("CAFE0002"), body=emsp.token("CAFE0002", "SOMETIMES")
    )
    assert (malformed.status, malformed.status_code) == (200, 2001)
    not_json = await emsp.call("PUT", emsp.token_url("CAFE0002"), raw_body=b"{nope")
    assert (not_json.status, not_json.status_code) == (400, 2001)
    others = f"{emsp.cpo_endpoints['tokens']}/NL/XYZ/CAFE0001"
    assert (await emsp.call("GET", others)).status == 404
    no_token = await emsp.call(
        "GET", emsp.token_url("CAFE0001"), headers={"Authorization": "Token d3Jvbmc="}
    )
    assert no_token.status == 401


async def test_whitelisted_swipe_starts_a_session_seen_by_ocpp_and_ocpi(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    assert live.csms is not None
    await emsp.push_token("CAFE0001", "ALWAYS")
    live.simulators[0].plug_in(rfid="cafe0001", energy_needed_wh=50_000)

    put = await emsp.wait_for(session_put(status="ACTIVE"))
    session = put.body
    assert session["cdr_token"]["uid"] == "CAFE0001"
    assert session["cdr_token"]["contract_id"] == "DE-EMS-CAFE0001"
    assert session["auth_method"] == "WHITELIST"
    assert (session["location_id"], session["evse_uid"], session["connector_id"]) == (
        "DEPOT-1",
        "CP-1",
        "1",
    )
    # The same session is an OCPP transaction upstream (the central system was not asked:
    # no Authorize for a roaming token).
    start = (await live.csms.wait_for_action("CP-1", "StartTransaction"))[0].payload
    assert start["id_tag"] == "cafe0001"
    assert "Authorize" not in {r.action for r in live.csms.received["CP-1"]}
    core = live.gateway.site.connector("CP-1").session
    assert core is not None
    assert core.id == session["id"]

    # Pullable too, paginated.
    pulled = await emsp.call(
        "GET", emsp.cpo_endpoints["sessions"], params={"date_from": "2020-01-01T00:00:00Z"}
    )
    assert pulled.status == 200
    assert [s["id"] for s in pulled.data] == [session["id"]]
    assert pulled.headers["X-Total-Count"] == "1"

    await until(lambda: live.simulators[0].energy_wh > start["meter_start"] + 100)
    live.simulators[0].unplug()
    completed = await emsp.wait_for(session_put(session["id"], "COMPLETED"))
    assert completed.body["kwh"] > 0
    cdr = (await emsp.wait_for(cdr_post(session["id"]))).body
    assert cdr["cdr_token"] == session["cdr_token"]
    assert cdr["total_energy"] == completed.body["kwh"]
    assert cdr["cdr_location"]["evse_uid"] == "CP-1"
    assert cdr["cdr_location"]["evse_id"] == "NL*EVG*E1"
    assert cdr["total_cost"] == {"excl_vat": 0.0}
    stop = (await live.csms.wait_for_action("CP-1", "StopTransaction"))[0].payload
    assert stop["meter_stop"] - start["meter_start"] == pytest.approx(
        cdr["total_energy"] * 1000, abs=1.0
    )
    cdrs = await emsp.call("GET", emsp.cpo_endpoints["cdrs"])
    assert [c["id"] for c in cdrs.data] == [cdr["id"]]


@pytest.mark.parametrize(
    ("whitelist", "valid", "emsp_says", "emsp_down", "accepted"),
    [
        ("ALLOWED", True, None, False, True),
        ("ALWAYS", False, None, False, False),
        ("NEVER", True, "ALLOWED", False, True),
        ("NEVER", True, "BLOCKED", False, False),
        ("NEVER", True, None, False, False),
        ("NEVER", True, "ALLOWED", True, False),
        ("ALLOWED_OFFLINE", True, "NO_CREDIT", False, False),
        ("ALLOWED_OFFLINE", True, "ALLOWED", True, True),
    ],
)
async def test_swipe_decided_by_whitelist_and_real_time_authorization(
    live: LiveOcpi,
    emsp: AuthorizingPeer,
    caplog: pytest.LogCaptureFixture,
    whitelist: str,
    valid: bool,
    emsp_says: str | None,
    emsp_down: bool,
    accepted: bool,
) -> None:
    caplog.set_level(logging.INFO)
    uid = "CAFE0042"
    await emsp.push_token(uid, whitelist, valid=valid)
    if emsp_says is not None:
        emsp.allowed[uid] = emsp_says
    emsp.down = emsp_down
    live.simulators[1].plug_in(rfid=uid, energy_needed_wh=50_000)
    real_time = whitelist in ("NEVER", "ALLOWED_OFFLINE") and valid
    if real_time:
        ask = await emsp.wait_for(lambda r: r.path.endswith(f"/tokens/{uid}/authorize"))
        assert ask.body == {"location_id": "DEPOT-1", "evse_uids": ["CP-2"]}
    if accepted:
        put = await emsp.wait_for(
            session_put(status="ACTIVE"), within_s=30 if not emsp_down else 60
        )
        expected = "AUTH_REQUEST" if real_time and not emsp_down else "WHITELIST"
        assert put.body["auth_method"] == expected
        if expected == "AUTH_REQUEST":
            assert put.body["authorization_reference"] == f"AUTH-{uid}"
        assert live.gateway.site.connector("CP-2").session is not None
    else:
        await refused(caplog, "CP-2", uid)
        connector = live.gateway.site.connector("CP-2")
        assert connector.session is None
        assert connector.pending_start is None
    if not real_time:
        assert not any(r.path.endswith("/authorize") for r in emsp.received)


async def test_unknown_identifier_goes_to_the_central_system(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    assert live.csms is not None
    live.simulators[2].plug_in(rfid="LOCAL-01", energy_needed_wh=50_000)
    authorize = (await live.csms.wait_for_action("CP-3", "Authorize"))[0].payload
    assert authorize == {"id_tag": "LOCAL-01"}
    await until(lambda: live.gateway.site.connector("CP-3").session is not None)
    # Not a roaming session: the eMSP neither gets it pushed nor sees it.
    pulled = await emsp.call(
        "GET", emsp.cpo_endpoints["sessions"], params={"date_from": "2020-01-01T00:00:00Z"}
    )
    assert pulled.data == []


# --- commands ---------------------------------------------------------------------------------


async def command(peer: EmspPeer, name: str, body: dict[str, Any], ref: str) -> Any:
    url = f"{peer.base}/{VERSION}/results/{name}/{ref}"
    reply = await peer.call(
        "POST", f"{peer.cpo_endpoints['commands']}/{name}", body={**body, "response_url": url}
    )
    return reply, url


async def test_start_and_stop_session_commands_with_their_results(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    assert live.csms is not None
    app_token = emsp.token(
        "6c3f2a8e-0b0e-4b36-9b64-8f4d2f3e9a11",
        "ALLOWED",
        type="APP_USER",
        contract_id="DE-EMS-APP1",
    )
    live.simulators[0].plug_in(rfid=None, energy_needed_wh=50_000)
    await until(lambda: live.gateway.site.connector("CP-1").status is not None)

    reply, url = await command(
        emsp,
        "START_SESSION",
        {
            "token": app_token,
            "location_id": "DEPOT-1",
            "evse_uid": "CP-1",
            "authorization_reference": "REF-1",
        },
        "1",
    )
    assert (reply.status, reply.status_code) == (200, 1000)
    assert reply.data == {"result": "ACCEPTED", "timeout": 30}
    result = await emsp.wait_for(posted_to(_path(url)))
    assert result.body == {"result": "ACCEPTED"}

    put = await emsp.wait_for(session_put(status="ACTIVE"))
    session = put.body
    assert session["auth_method"] == "COMMAND"
    assert session["authorization_reference"] == "REF-1"
    assert session["cdr_token"]["type"] == "APP_USER"
    # The same session is a transaction at the central system, with an OCPP-sized idTag.
    start = (await live.csms.wait_for_action("CP-1", "StartTransaction"))[0].payload
    assert start["id_tag"] == id_tag_for(app_token)

    # A second start on the busy EVSE: accepted as a request, the charger is occupied.
    reply, busy_url = await command(
        emsp,
        "START_SESSION",
        {"token": app_token, "location_id": "DEPOT-1", "evse_uid": "CP-1"},
        "2",
    )
    assert reply.data["result"] == "ACCEPTED"
    busy = await emsp.wait_for(posted_to(_path(busy_url)))
    assert busy.body["result"] == "EVSE_OCCUPIED"

    reply, stop_url = await command(emsp, "STOP_SESSION", {"session_id": session["id"]}, "3")
    assert reply.data == {"result": "ACCEPTED", "timeout": 30}
    stopped = await emsp.wait_for(posted_to(_path(stop_url)))
    assert stopped.body == {"result": "ACCEPTED"}
    stop = (await live.csms.wait_for_action("CP-1", "StopTransaction"))[0].payload
    assert stop["reason"] == "Remote"
    cdr = (await emsp.wait_for(cdr_post(session["id"]))).body
    assert cdr["auth_method"] == "COMMAND"
    assert cdr["authorization_reference"] == "REF-1"

    reply, _ = await command(emsp, "STOP_SESSION", {"session_id": session["id"]}, "4")
    assert reply.data["result"] == "UNKNOWN_SESSION"


def _path(url: str) -> str:
    """The path part of an absolute URL."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_commands_refused_or_not_supported(live: LiveOcpi, emsp: AuthorizingPeer) -> None:
    token = emsp.token("CAFE0001", "ALWAYS")
    reply, _ = await command(
        emsp, "START_SESSION", {"token": token, "location_id": "ELSEWHERE", "evse_uid": "CP-1"}, "a"
    )
    assert (reply.status, reply.status_code) == (200, 2003)
    assert reply.data["result"] == "REJECTED"
    reply, _ = await command(
        emsp,
        "UNLOCK_CONNECTOR",
        {"location_id": "DEPOT-1", "evse_uid": "CP-1", "connector_id": "1"},
        "b",
    )
    assert reply.data["result"] == "NOT_SUPPORTED"
    reply, _ = await command(
        emsp, "START_SESSION", {"token": token, "location_id": "DEPOT-1", "evse_uid": "NOPE"}, "c"
    )
    assert reply.data["result"] == "REJECTED"
    reply, _ = await command(emsp, "START_SESSION", {"location_id": "DEPOT-1"}, "d")
    assert (reply.status, reply.status_code) == (200, 2001)
    reply, _ = await command(emsp, "STOP_SESSION", {"session_id": "no-such-session"}, "e")
    assert reply.data["result"] == "UNKNOWN_SESSION"
    reply = await emsp.call("POST", f"{emsp.cpo_endpoints['commands']}/SELF_DESTRUCT", body={})
    assert reply.status_code == 2001
    assert reply.status < 500


async def test_start_session_on_an_unreachable_charger_reports_evse_inoperative(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    await live.simulators[2].stop()
    await until(lambda: not live.gateway.site.connector("CP-3").online)
    token = emsp.token("CAFE0001", "ALWAYS")
    reply, url = await command(
        emsp, "START_SESSION", {"token": token, "location_id": "DEPOT-1", "evse_uid": "CP-3"}, "x"
    )
    assert reply.data["result"] == "ACCEPTED"
    result = await emsp.wait_for(posted_to(_path(url)))
    assert result.body["result"] == "EVSE_INOPERATIVE"


# --- charging profiles --------------------------------------------------------------------------


async def test_charging_profile_caps_the_balancing_of_the_session(
    tmp_path: Path, emsp: AuthorizingPeer
) -> None:
    fuse = CircuitSection(id="fuse", max_current_a=(63.0, 63.0, 63.0))
    async with live_ocpi(tmp_path, circuits=[fuse]) as running:
        await register(running, emsp)
        await emsp.push_token("CAFE0001", "ALWAYS")
        simulator = running.simulators[0]
        simulator.plug_in(rfid="CAFE0001", energy_needed_wh=50_000)
        session = (await emsp.wait_for(session_put(status="ACTIVE"))).body
        await until(lambda: simulator.setpoint_a == 16.0)
        url = f"{emsp.cpo_endpoints['chargingprofiles']}/{session['id']}"
        result_url = f"{emsp.base}/{VERSION}/results/profile/1"
        reply = await emsp.call(
            "PUT",
            url,
            body={
                "response_url": result_url,
                "charging_profile": {
                    "charging_rate_unit": "A",
                    "charging_profile_period": [{"start_period": 0, "limit": 10}],
                },
            },
        )
        assert reply.data == {"result": "ACCEPTED", "timeout": 30}
        assert (await emsp.wait_for(posted_to(_path(result_url)))).body == {"result": "ACCEPTED"}
        await until(lambda: simulator.setpoint_a == 10.0)

        active_url = f"{emsp.base}/{VERSION}/results/profile/2"
        reply = await emsp.call("GET", url, params={"duration": "3600", "response_url": active_url})
        assert reply.data["result"] == "ACCEPTED"
        active = (await emsp.wait_for(posted_to(_path(active_url)))).body
        assert active["result"] == "ACCEPTED"
        assert active["profile"]["charging_profile"]["charging_profile_period"] == [
            {"start_period": 0, "limit": 10.0}
        ]

        clear_url = f"{emsp.base}/{VERSION}/results/profile/3"
        reply = await emsp.call("DELETE", url, params={"response_url": clear_url})
        assert reply.data["result"] == "ACCEPTED"
        assert (await emsp.wait_for(posted_to(_path(clear_url)))).body == {"result": "ACCEPTED"}
        await until(lambda: simulator.setpoint_a == 16.0)

        unknown = await emsp.call(
            "DELETE",
            f"{emsp.cpo_endpoints['chargingprofiles']}/nope",
            params={"response_url": clear_url},
        )
        assert unknown.data["result"] == "UNKNOWN_SESSION"
        bad = await emsp.call("PUT", url, body={"response_url": result_url, "charging_profile": {}})
        assert (bad.status, bad.status_code) == (200, 2001)


async def test_charging_profiles_need_load_balancing(live: LiveOcpi, emsp: AuthorizingPeer) -> None:
    reply = await emsp.call(
        "DELETE",
        f"{emsp.cpo_endpoints['chargingprofiles']}/any",
        params={"response_url": f"{emsp.base}/{VERSION}/results/x"},
    )
    assert reply.data == {"result": "NOT_SUPPORTED", "timeout": 30}


# --- restart ------------------------------------------------------------------------------------


async def test_sessions_cdrs_and_tokens_survive_a_gateway_restart(
    tmp_path: Path, emsp: AuthorizingPeer
) -> None:
    async with live_ocpi(tmp_path) as first:
        await register(first, emsp)
        await emsp.push_token("CAFE0001", "ALWAYS")
        first.simulators[0].plug_in(rfid="CAFE0001", energy_needed_wh=50_000)
        session = (await emsp.wait_for(session_put(status="ACTIVE"))).body
        await until(lambda: first.simulators[0].energy_wh > 100)
        first.simulators[0].unplug()
        cdr = (await emsp.wait_for(cdr_post(session["id"]))).body
        port = first.gateway.ocpi.port if first.gateway.ocpi is not None else None

    async with live_ocpi(tmp_path, port=port) as second:
        sessions = await emsp.call(
            "GET", emsp.cpo_endpoints["sessions"], params={"date_from": "2020-01-01T00:00:00Z"}
        )
        assert [s["id"] for s in sessions.data] == [session["id"]]
        assert sessions.data[0]["status"] == "COMPLETED"
        cdrs = await emsp.call("GET", emsp.cpo_endpoints["cdrs"])
        assert cdrs.data == [cdr]
        token = await emsp.call("GET", emsp.token_url("CAFE0001"))
        assert token.data == emsp.token("CAFE0001", "ALWAYS")
        # The pushed token still authorizes a swipe after the restart.
        second.simulators[1].plug_in(rfid="CAFE0001", energy_needed_wh=50_000)
        await until(lambda: second.gateway.site.connector("CP-2").session is not None)
        book = roaming_of(second).sessions
        page = await book.page([("DE", "EMS")], PageParams(0, 10))
        assert page.total == 2


async def test_reserve_now_and_cancel_reservation(
    live: LiveOcpi, emsp: AuthorizingPeer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await emsp.push_token("CAFE0001", "ALWAYS")
    await emsp.push_token("CAFE0002", "ALWAYS")
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reserve = {
        "token": emsp.token("CAFE0001", "ALWAYS"),
        "expiry_date": expiry,
        "reservation_id": "R-1",
        "location_id": "DEPOT-1",
        "evse_uid": "CP-1",
    }
    reply, url = await command(emsp, "RESERVE_NOW", reserve, "r1")
    assert reply.data == {"result": "ACCEPTED", "timeout": 30}
    assert (await emsp.wait_for(posted_to(_path(url)))).body == {"result": "ACCEPTED"}
    held = live.gateway.site.reservation("CP-1")
    assert held is not None
    assert held.id_tag == "CAFE0001"
    assert held.source == "ocpi"

    # Another driver's token is refused at the reserved charger.
    live.simulators[0].plug_in(rfid="CAFE0002", energy_needed_wh=50_000)
    await refused(caplog, "CP-1", "CAFE0002")
    assert live.gateway.site.connector("CP-1").session is None
    live.simulators[0].unplug()

    reply, url = await command(emsp, "CANCEL_RESERVATION", {"reservation_id": "R-1"}, "r2")
    assert reply.data["result"] == "ACCEPTED"
    assert (await emsp.wait_for(posted_to(_path(url)))).body == {"result": "ACCEPTED"}
    assert live.gateway.site.reservation("CP-1") is None
    reply, url = await command(emsp, "CANCEL_RESERVATION", {"reservation_id": "R-1"}, "r3")
    result = await emsp.wait_for(posted_to(_path(url)))
    assert result.body == {"result": "UNKNOWN_RESERVATION"}

    # Reserved again, the reserving driver's swipe starts the session and uses it up.
    await until(lambda: live.gateway.site.connector("CP-1").status is ConnectorStatus.AVAILABLE)
    reply, url = await command(emsp, "RESERVE_NOW", {**reserve, "reservation_id": "R-2"}, "r4")
    assert (await emsp.wait_for(posted_to(_path(url)))).body == {"result": "ACCEPTED"}
    live.simulators[0].plug_in(rfid="CAFE0001", energy_needed_wh=50_000)
    put = await emsp.wait_for(session_put(status="ACTIVE"))
    assert put.body["cdr_token"]["uid"] == "CAFE0001"
    await until(lambda: live.gateway.site.reservation("CP-1") is None)
    # A reservation on an occupied charger is refused by the core.
    reply, url = await command(emsp, "RESERVE_NOW", {**reserve, "reservation_id": "R-3"}, "r5")
    assert (await emsp.wait_for(posted_to(_path(url)))).body["result"] == "EVSE_OCCUPIED"


async def test_session_pushes_while_charging_are_throttled(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    roaming_of(live).sessions.push_interval_s = 1.0
    await emsp.push_token("CAFE0001", "ALWAYS")
    live.simulators[0].plug_in(rfid="CAFE0001", energy_needed_wh=50_000)

    def updates() -> list[Received]:
        return [r for r in emsp.received if session_put(status="ACTIVE")(r)]

    await until(lambda: len(updates()) >= 4)
    seen = updates()
    assert len({r.body["id"] for r in seen}) == 1
    energies = [r.body["kwh"] for r in seen]
    assert energies == sorted(energies)
    assert energies[-1] > energies[0]
    # At most one push per interval (plus the start): far fewer than the polls (5 per s).
    span = seen[-1].at - seen[0].at
    assert len(seen) <= span / 1.0 + 2


async def test_cdr_priced_by_the_configured_tariff(tmp_path: Path, emsp: AuthorizingPeer) -> None:
    tariff = parse_tariff(
        {
            "country_code": "NL",
            "party_id": "EVG",
            "id": "AC-1",
            "currency": "EUR",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 21, "step_size": 1}]}
            ],
            "last_updated": "2026-01-01T00:00:00Z",
        }
    )
    chargers = {"CP-1": OcpiChargerSection(evse_id="NL*EVG*E1", tariff_ids=("AC-1",))}
    async with live_ocpi(tmp_path, tariffs=[tariff], ocpi_chargers=chargers) as running:
        await register(running, emsp)
        await emsp.push_token("CAFE0001", "ALWAYS")
        simulator = running.simulators[0]
        start_wh = simulator.energy_wh
        simulator.plug_in(rfid="CAFE0001", energy_needed_wh=50_000)
        session = (await emsp.wait_for(session_put(status="ACTIVE"))).body
        assert session["currency"] == "EUR"
        await until(lambda: simulator.energy_wh > start_wh + 500)
        simulator.unplug()
        cdr = (await emsp.wait_for(cdr_post(session["id"]))).body
    # By hand: the energy at 0.30 EUR/kWh, 21 % VAT, rounded to cents; nothing else billed.
    energy = cdr["total_energy"]
    assert energy >= 0.4
    assert cdr["total_energy_cost"]["excl_vat"] == pytest.approx(energy * 0.30, abs=0.005)
    assert cdr["total_energy_cost"]["incl_vat"] == pytest.approx(energy * 0.30 * 1.21, abs=0.005)
    assert cdr["total_cost"] == cdr["total_energy_cost"]
    assert cdr["tariffs"][0]["id"] == "AC-1"
    assert {p["tariff_id"] for p in cdr["charging_periods"]} == {"AC-1"}
    assert sum(
        d["volume"]
        for p in cdr["charging_periods"]
        for d in p["dimensions"]
        if d["type"] == "ENERGY"
    ) == pytest.approx(energy, abs=0.001)


async def test_a_reservation_admits_another_token_of_the_same_group(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    await emsp.push_token("CAFE0003", "ALWAYS", group_id="FLEET-7")
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reserve = {
        "token": emsp.token("CAFE0001", "ALWAYS", group_id="FLEET-7"),
        "expiry_date": expiry,
        "reservation_id": "G-1",
        "location_id": "DEPOT-1",
        "evse_uid": "CP-2",
    }
    reply, url = await command(emsp, "RESERVE_NOW", reserve, "g1")
    assert reply.data["result"] == "ACCEPTED"
    assert (await emsp.wait_for(posted_to(_path(url)))).body == {"result": "ACCEPTED"}
    held = live.gateway.site.reservation("CP-2")
    assert held is not None
    assert held.parent_id_tag == "FLEET-7"
    live.simulators[1].plug_in(rfid="CAFE0003", energy_needed_wh=50_000)
    put = await emsp.wait_for(session_put(status="ACTIVE"))
    assert put.body["cdr_token"]["uid"] == "CAFE0003"
    assert put.body["evse_uid"] == "CP-2"


async def test_no_real_time_authorization_soon_after_a_reserve_now(
    live: LiveOcpi, emsp: AuthorizingPeer
) -> None:
    # A NEVER token the eMSP would not even know in real time (404): its RESERVE_NOW
    # vouches for it, so the swipe that follows is not asked about again.
    await emsp.push_token("CAFE0009", "NEVER")
    expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    reserve = {
        "token": emsp.token("CAFE0009", "NEVER"),
        "expiry_date": expiry,
        "reservation_id": "Q-1",
        "location_id": "DEPOT-1",
        "evse_uid": "CP-3",
    }
    reply, url = await command(emsp, "RESERVE_NOW", reserve, "q1")
    assert reply.data["result"] == "ACCEPTED"
    assert (await emsp.wait_for(posted_to(_path(url)))).body == {"result": "ACCEPTED"}
    live.simulators[2].plug_in(rfid="CAFE0009", energy_needed_wh=50_000)
    put = await emsp.wait_for(session_put(status="ACTIVE"))
    assert put.body["auth_method"] == "COMMAND"
    assert not any(r.path.endswith("/authorize") for r in emsp.received)
