"""The local API over real HTTP on loopback, against a real gateway polling simulated Modbus
chargers under a fuse tree, with an OCPP central system upstream."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from gateway.core.status import ConnectorStatus
from tests.api.conftest import BOARD_A, BUILDING_L1_A, LiveSite, until

API = "/api/v1"


async def get_json(
    client: aiohttp.ClientSession, site: LiveSite, path: str, token: str | None = None
) -> Any:
    async with client.get(site.url + path, headers=site.headers(token)) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def put(
    client: aiohttp.ClientSession,
    site: LiveSite,
    path: str,
    body: Any,
    token: str | None = None,
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with client.put(site.url + path, data=data, headers=site.headers(token)) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def test_reads_show_the_site_circuits_chargers_sessions_and_uplinks(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    site.simulators[0].plug_in(rfid="TAG-A")
    await until(lambda: site.simulators[0].setpoint_a == 16.0)
    connector = site.gateway.site.connector("CP-1")
    # What the gateway last read, not what the simulator draws now: the poll lags.
    await until(lambda: connector.reading is not None and connector.reading.current_a[0] > 1.0)

    chargers = {c["id"]: c for c in await get_json(client, site, f"{API}/chargers")}
    assert set(chargers) == {"CP-1", "CP-2", "CP-3"}
    await until(lambda: site.gateway.site.connector("CP-1").status is ConnectorStatus.CHARGING)
    one = await get_json(client, site, f"{API}/chargers/CP-1")
    assert one["status"] == "Charging"
    assert one["online"]
    assert one["operative"]
    assert one["circuit"] == "board-A"
    assert one["balancing"]["reason"]
    assert one["allocated_a"] == 16.0
    assert one["current_a"][0] > 1.0
    assert one["session_id"] is not None

    circuits = {c["id"]: c for c in await get_json(client, site, f"{API}/circuits")}
    assert circuits["board-A"]["parent"] == "grid"
    assert circuits["board-A"]["limit_a"] == [BOARD_A] * 3
    assert circuits["board-A"]["chargers"] == ["CP-1", "CP-2"]
    # CP-1 hangs under board-A, so the grid carries its allocation too.
    assert circuits["grid"]["allocated_a"] == [16.0] * 3
    # The grid meter sees the building's load on L1 besides the charger; board-A has no meter.
    grid = circuits["grid"]
    assert grid["measured_source"] == "meter"
    assert grid["measured_a"][0] == pytest.approx(grid["measured_a"][1] + BUILDING_L1_A, abs=1.0)
    assert circuits["board-A"]["measured_source"] == "chargers"
    assert circuits["board-A"]["measured_a"][1] > 1.0

    summary = await get_json(client, site, f"{API}/site")
    assert summary["chargers"] == 3
    assert summary["current_a"][0] > summary["current_a"][1]  # the site meter's building load
    assert summary["limit_a"] == [40.0] * 3
    assert summary["statuses"]["Charging"] == 1

    uplinks = await get_json(client, site, f"{API}/uplinks")
    assert {u["id"] for u in uplinks} == {"CP-1", "CP-2", "CP-3"}
    assert all(u["connected"] and u["accepted"] for u in uplinks)
    assert all(u["queue_depth"] == 0 for u in uplinks if u["id"] != "CP-1")

    sessions = await get_json(client, site, f"{API}/sessions?limit=10")
    assert [s["charger_id"] for s in sessions["live"]] == ["CP-1"]
    assert sessions["live"][0]["id_tag"] == "TAG-A"
    assert sessions["total"] == 1
    assert sessions["history"][0]["id"] == one["session_id"]

    site.simulators[0].unplug()
    await until(lambda: site.gateway.site.connector("CP-1").session is None)
    sessions = await get_json(client, site, f"{API}/sessions?charger_id=CP-1")
    assert sessions["live"] == []
    assert sessions["history"][0]["stop_reason"] == "EVDisconnected"
    assert sessions["history"][0]["energy_wh"] > 0


async def test_refused_without_a_token_with_a_wrong_one_or_with_the_read_role(
    site: LiveSite, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with client.get(site.url + f"{API}/chargers") as response:
        assert response.status == 401
        assert "missing Authorization" in (await response.json())["error"]
    wrong = "x" * 32
    async with client.get(site.url + f"{API}/chargers", headers=site.headers(wrong)) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized: unknown token"
    async with client.get(
        site.url + "/metrics", headers={"Authorization": "Token abc"}
    ) as response:
        assert response.status == 401

    # The read role reads everything, writes nothing.
    me = await get_json(client, site, f"{API}/me", site.read_token)
    assert me == {"name": "viewer", "role": "read"}
    status, body = await put(
        client, site, f"{API}/chargers/CP-1/limit", {"max_current_a": 8}, site.read_token
    )
    assert status == 403
    assert "read role" in body["error"]
    assert site.gateway.balancing is not None
    assert site.gateway.balancing.charger_caps("CP-1") == {}

    # HTTP Basic with the token as the password works too (curl -u, a browser prompt).
    basic = base64.b64encode(f"anyone:{site.admin_token}".encode()).decode()
    async with client.get(
        site.url + f"{API}/me", headers={"Authorization": f"Basic {basic}"}
    ) as response:
        assert (await response.json())["role"] == "admin"

    # The dashboard and the description are open; they hold no site data.
    for path in ("/", "/dashboard.js", "/dashboard.css", f"{API}/openapi.json"):
        async with client.get(site.url + path) as response:
            assert response.status == 200, path

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "local API request refused" in logged
    for secret in (site.admin_token, site.read_token, wrong):
        assert secret not in logged


async def test_a_manual_cap_lowers_the_setpoint_on_the_charger(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    simulator = site.simulators[0]
    simulator.plug_in(rfid="TAG-CAP")
    await until(lambda: simulator.setpoint_a == 16.0)

    status, body = await put(client, site, f"{API}/chargers/CP-1/limit", {"max_current_a": 10})
    assert status == 200, body
    assert body["caps_a"] == {"api": 10.0}
    await until(lambda: simulator.setpoint_a == 10.0)
    charger = await get_json(client, site, f"{API}/chargers/CP-1")
    await until(lambda: "cap" in site.gateway.balancing.status("CP-1").reason)  # type: ignore[union-attr]
    assert charger["caps_a"] == {"api": 10.0}

    status, body = await put(client, site, f"{API}/chargers/CP-1/limit", {"max_current_a": None})
    assert status == 200
    assert body["caps_a"] == {}
    await until(lambda: simulator.setpoint_a == 16.0)


async def test_a_circuit_limit_shares_less_between_the_chargers_below(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    first, second = site.simulators[0], site.simulators[1]
    first.plug_in(rfid="TAG-1")
    second.plug_in(rfid="TAG-2")
    await until(lambda: first.setpoint_a == 16.0 and second.setpoint_a == 16.0)

    status, body = await put(
        client, site, f"{API}/circuits/board-A/limit", {"max_current_a": [20, 24, 24]}
    )
    assert status == 200, body
    assert body["limits_a"] == {"api": [20.0, 24.0, 24.0]}
    assert body["limit_a"] == [20.0, 24.0, 24.0]
    # Three-phase chargers: L1's 20 A binds, 10 A each.
    await until(lambda: first.setpoint_a + second.setpoint_a <= 20.0)
    assert first.setpoint_a == second.setpoint_a == 10.0

    status, body = await put(client, site, f"{API}/circuits/board-A/limit", {"max_current_a": None})
    assert status == 200
    assert body["limits_a"] == {}
    await until(lambda: first.setpoint_a == 16.0 and second.setpoint_a == 16.0)


async def test_an_inoperative_charger_gets_no_current_and_shows_unavailable(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    simulator = site.simulators[2]
    simulator.plug_in(rfid="TAG-3")
    await until(lambda: simulator.current_a > 1.0)

    status, body = await put(
        client, site, f"{API}/chargers/CP-3/availability", {"availability": "inoperative"}
    )
    assert status == 200, body
    assert body["operative"] is False
    assert body["status"] == "Unavailable"
    await until(lambda: simulator.setpoint_a == 0.0 or not simulator.enabled)
    await until(lambda: simulator.current_a == 0.0)
    snapshot = await get_json(client, site, f"{API}/snapshot")
    assert "charger CP-3: out of service" in snapshot["problems"]
    # The central system hears it as the 1.6 status Unavailable.
    await site.csms.wait_for(
        "CP-3",
        lambda got: any(
            m.action == "StatusNotification" and m.payload.get("status") == "Unavailable"
            for m in got
        ),
    )

    status, body = await put(
        client, site, f"{API}/chargers/CP-3/availability", {"availability": "operative"}
    )
    assert status == 200
    assert body["operative"] is True
    await until(lambda: simulator.current_a > 1.0)


async def test_a_vehicle_need_reaches_the_balancing(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    departure = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    body = {"energy_kwh": 30, "departure": departure.isoformat()}
    status, answer = await put(client, site, f"{API}/chargers/CP-2/vehicle-need", body)
    assert status == 409
    assert "no active session" in answer["error"]

    site.simulators[1].plug_in(rfid="TAG-NEED")
    await until(lambda: site.gateway.site.connector("CP-2").session is not None)
    status, answer = await put(client, site, f"{API}/chargers/CP-2/vehicle-need", body)
    assert status == 200, answer
    assert answer["energy_kwh"] == 30.0
    assert answer["session_id"] == site.gateway.site.connector("CP-2").session.id  # type: ignore[union-attr]
    shown = datetime.fromisoformat(answer["departure"])
    assert abs((shown - departure).total_seconds()) <= 2
    need = await get_json(client, site, f"{API}/chargers/CP-2/vehicle-need")
    assert need["energy_kwh"] == 30.0
    assert need["energy_left_kwh"] <= 30.0


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("chargers/CP-1/limit", b"{not json", "body: not valid JSON"),
        ("chargers/CP-1/limit", [1, 2], "body: must be a JSON object"),
        ("chargers/CP-1/limit", {}, "max_current_a: missing"),
        ("chargers/CP-1/limit", {"max_current_a": 8, "x": 1}, "x: unknown field"),
        ("chargers/CP-1/limit", {"max_current_a": -1}, "max_current_a: must be a number"),
        ("chargers/CP-1/limit", {"max_current_a": "8"}, "max_current_a: must be a number"),
        ("chargers/CP-1/limit", {"max_current_a": True}, "max_current_a: must be a number"),
        ("circuits/grid/limit", {"max_current_a": [1, 2]}, "max_current_a: a list must have 3"),
        ("chargers/CP-1/availability", {"availability": "off"}, "availability: must be"),
        (
            "chargers/CP-1/vehicle-need",
            {"energy_kwh": 10, "departure": "tomorrow"},
            "departure: not an ISO 8601 date-time",
        ),
        (
            "chargers/CP-1/vehicle-need",
            {"energy_kwh": 10, "departure": "2030-01-01T06:00:00"},
            "departure: needs a time zone",
        ),
        (
            "chargers/CP-1/vehicle-need",
            {"energy_kwh": 1e9, "departure": "2030-01-01T06:00:00Z"},
            "energy_kwh: must be a number between 0 and 1000",
        ),
    ],
)
async def test_bad_bodies_get_400_naming_the_field(
    site: LiveSite, client: aiohttp.ClientSession, path: str, body: Any, message: str
) -> None:
    status, answer = await put(client, site, f"{API}/{path}", body)
    assert status == 400
    assert answer["error"].startswith(message), answer


async def test_unknown_ids_routes_and_bad_queries(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    for path, expected in [
        (f"{API}/chargers/NOPE", "unknown charger 'NOPE'"),
        (f"{API}/circuits/NOPE", "unknown circuit 'NOPE'"),
        (f"{API}/load-history?series=NOPE", "unknown series 'NOPE'"),
        (f"{API}/nothing-here", "no such route"),
    ]:
        async with client.get(site.url + path, headers=site.headers()) as response:
            assert response.status == 404, path
            assert expected in (await response.json())["error"]
    status, _answer = await put(client, site, f"{API}/chargers/NOPE/limit", {"max_current_a": 1})
    assert status == 404
    for query in ("limit=0", "limit=abc", "offset=-1", f"limit={10**6}"):
        async with client.get(
            site.url + f"{API}/sessions?{query}", headers=site.headers()
        ) as response:
            assert response.status == 400, query
    async with client.delete(site.url + f"{API}/chargers", headers=site.headers()) as response:
        assert response.status == 405
        assert "not allowed" in (await response.json())["error"]


async def test_the_event_stream_pushes_changing_snapshots(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    snapshots: list[dict[str, Any]] = []
    async with client.get(site.url + f"{API}/events", headers=site.headers()) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"

        async def read_until(condition: Any) -> None:
            while True:
                line = (await response.content.readline()).decode()
                if line.startswith("data: "):
                    snapshots.append(json.loads(line[6:]))
                    if condition(snapshots[-1]):
                        return

        async with asyncio.timeout(30):
            await read_until(lambda s: s["sessions"] == [])
            site.simulators[0].plug_in(rfid="TAG-LIVE")
            await read_until(
                lambda s: (
                    s["chargers"][0]["current_a"] is not None
                    and s["chargers"][0]["current_a"][0] > 1.0
                )
            )
    assert snapshots[-1]["sessions"][0]["charger_id"] == "CP-1"
    assert snapshots[-1]["site"]["current_a"][0] > 1.0


async def test_the_load_history_grows_and_stays_bounded(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    assert site.gateway.api is not None
    history = site.gateway.api.history
    await until(lambda: len(history.samples("site")) >= 3)
    body = await get_json(client, site, f"{API}/load-history?series=board-A&minutes=10")
    assert body["series"] == "board-A"
    assert body["sample_interval_s"] == 0.5
    assert all(len(sample) == 4 for sample in body["samples"])
    # One hour at 0.5 s: 7,200 samples per series, 32 bytes each.
    assert history.capacity == 7200
    assert history.memory_bytes == len(history.series) * 7200 * 32


async def test_metrics_alarms_and_diagnostics_follow_the_roles(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    async with client.get(site.url + "/metrics") as response:
        assert response.status == 401
    async with client.get(site.url + "/metrics", headers=site.headers(site.read_token)) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert "# TYPE" in await response.text()

    alarms = await get_json(client, site, f"{API}/alarms", site.read_token)
    assert isinstance(alarms["active"], list)
    assert isinstance(alarms["history"], list)

    api = site.gateway.api
    assert api is not None
    async with client.post(
        site.url + f"{API}/diagnostics", headers=site.headers(site.read_token)
    ) as response:
        # Admin only where the bundle exists; not routed where it does not.
        assert response.status == (403 if "bundle" in api.features else 404)
    if "bundle" in api.features:
        async with client.post(site.url + f"{API}/diagnostics", headers=site.headers()) as response:
            assert response.status == 200
            assert (await response.read())[:2] == b"\x1f\x8b"  # gzip


async def test_live_streams_are_bounded(site: LiveSite, client: aiohttp.ClientSession) -> None:
    api = site.gateway.api
    assert api is not None
    api.max_streams = 2
    url, headers = site.url + f"{API}/events", site.headers(site.read_token)
    async with (
        client.get(url, headers=headers) as first,
        client.get(url, headers=headers) as second,
    ):
        assert (first.status, second.status) == (200, 200)
        await first.content.readline()
        await second.content.readline()
        async with client.get(url, headers=headers) as third:
            assert third.status == 503
            assert "too many live streams" in (await third.json())["error"]
    # Closed streams free their places.
    await until(lambda: api._streams == 0)
    async with client.get(url, headers=headers) as again:
        assert again.status == 200


async def test_session_history_pages_newest_first(
    site: LiveSite, client: aiohttp.ClientSession
) -> None:
    simulator = site.simulators[1]
    connector = site.gateway.site.connector("CP-2")
    for tag in ("TAG-OLD", "TAG-NEW"):
        simulator.plug_in(rfid=tag)
        await until(lambda: connector.session is not None)
        simulator.unplug()
        await until(lambda: connector.session is None)
    newest = await get_json(client, site, f"{API}/sessions?charger_id=CP-2&limit=1")
    older = await get_json(client, site, f"{API}/sessions?charger_id=CP-2&limit=1&offset=1")
    assert newest["total"] == older["total"] == 2
    assert [s["id_tag"] for s in newest["history"]] == ["TAG-NEW"]
    assert [s["id_tag"] for s in older["history"]] == ["TAG-OLD"]
    assert older["history"][0]["stopped_at"] is not None
    assert (await get_json(client, site, f"{API}/sessions?charger_id=CP-1"))["total"] == 0
