"""OCPI Locations with live status from simulated chargers, status pushes to eMSP peers over
loopback HTTP (one that is down blocks nobody), last_updated propagation, and REMOVED EVSEs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from gateway.core.events import StatusChanged
from gateway.ocpi.transport import parse_datetime
from tests.ocpi.conftest import LiveOcpi, live_ocpi, until
from tests.ocpi.emsp_peer import EmspPeer, Received

PUSH_WITHIN_S = 1.0
"""The issue's bound for an EVSE status push, from the core's status event to the peer."""


def is_status_patch(status: str, uid: str = "CP-1") -> Callable[[Received], bool]:
    def match(item: Received) -> bool:
        return (
            item.method == "PATCH"
            and item.path.endswith(f"/locations/NL/EVG/DEPOT-1/{uid}")
            and isinstance(item.body, dict)
            and item.body.get("status") == status
        )

    return match


async def test_location_serves_the_site_with_live_status(
    registered: tuple[LiveOcpi, EmspPeer],
) -> None:
    live, peer = registered
    listing = await peer.call("GET", live.module_url("locations"))
    assert listing.headers["X-Total-Count"] == "1"
    [location] = listing.data
    assert location["id"] == "DEPOT-1"
    assert location["country"] == "NLD"
    assert location["country_code"] == "NL"
    assert location["party_id"] == "EVG"
    assert location["time_zone"] == "Europe/Amsterdam"
    assert location["coordinates"] == {"latitude": "51.900000", "longitude": "4.480000"}
    evses = {evse["uid"]: evse for evse in location["evses"]}
    assert set(evses) == {"CP-1", "CP-2", "CP-3"}
    first = evses["CP-1"]
    assert first["evse_id"] == "NL*EVG*E1"
    assert {"CREDIT_CARD_PAYABLE", "REMOTE_START_STOP_CAPABLE", "RESERVABLE"} <= set(
        first["capabilities"]
    )
    assert set(evses["CP-2"]["capabilities"]) == {
        "RFID_READER",
        "REMOTE_START_STOP_CAPABLE",
        "RESERVABLE",
    }
    assert first["status"] == "AVAILABLE"
    [connector] = first["connectors"]
    assert connector["power_type"] == "AC_3_PHASE"
    assert connector["max_voltage"] == 400
    assert connector["max_amperage"] == 16
    assert connector["id"] == "1"
    assert "evse_id" not in evses["CP-2"]
    evse = await peer.call("GET", live.module_url("locations") + "/DEPOT-1/CP-2")
    assert evse.data["uid"] == "CP-2"
    one = await peer.call("GET", live.module_url("locations") + "/DEPOT-1/CP-2/1")
    assert one.data["standard"] == "IEC_62196_T2"
    assert (await peer.call("GET", live.module_url("locations") + "/DEPOT-1/CP-9")).status == 404
    assert (await peer.call("GET", live.module_url("locations") + "/DEPOT-1/CP-2/2")).status == 404
    # date_from after the last change: nothing to fetch.
    later = await peer.call(
        "GET", live.module_url("locations"), params={"date_from": "2100-01-01T00:00:00Z"}
    )
    assert later.data == []
    assert later.headers["X-Total-Count"] == "0"


async def test_status_change_is_pushed_within_a_second_and_propagates(
    registered: tuple[LiveOcpi, EmspPeer],
) -> None:
    live, peer = registered
    events = live.gateway.site.subscribe("CP-1")
    loop = asyncio.get_running_loop()
    live.simulators[0].inject_fault(7)
    async with asyncio.timeout(30):
        while True:
            event = await events.get()
            if isinstance(event, StatusChanged) and event.status.value == "Faulted":
                changed_at = loop.time()
                break
    patch = await peer.wait_for(is_status_patch("OUTOFORDER"))
    assert patch.at - changed_at < PUSH_WITHIN_S
    assert set(patch.body) == {"status", "last_updated"}
    assert patch.headers["OCPI-to-country-code"] == "DE"
    assert patch.headers["OCPI-to-party-id"] == "EMS"
    assert patch.headers["OCPI-from-party-id"] == "EVG"
    assert patch.headers["X-Request-ID"]
    # last_updated goes up the tree: EVSE and Location carry the change's time.
    location = (await peer.call("GET", live.module_url("locations") + "/DEPOT-1")).data
    evse = next(e for e in location["evses"] if e["uid"] == "CP-1")
    assert evse["status"] == "OUTOFORDER"
    assert evse["last_updated"] == patch.body["last_updated"] == location["last_updated"]
    assert parse_datetime(location["last_updated"]) >= max(
        parse_datetime(e["last_updated"]) for e in location["evses"]
    )
    live.simulators[0].clear_fault()
    await peer.wait_for(is_status_patch("AVAILABLE"))


async def test_a_partner_that_is_down_blocks_nobody_and_can_pull(tmp_path: Path) -> None:
    down, up = EmspPeer(party_id="DWN"), EmspPeer(party_id="UPP")
    await down.start()
    await up.start()
    try:
        async with live_ocpi(tmp_path, issued=("down", "up")) as live:
            assert (await down.register_with(live.versions_url, live.token_a["down"])).status == 200
            assert (await up.register_with(live.versions_url, live.token_a["up"])).status == 200
            down.down = True
            for simulator in live.simulators:
                simulator.inject_fault(3)
            for uid in ("CP-1", "CP-2", "CP-3"):
                await up.wait_for(is_status_patch("OUTOFORDER", uid))
            # The down partner was tried (and answered 503), the gateway kept running.
            await down.wait_for(lambda item: item.method == "PATCH")
            assert all(live.gateway.site.connector(f"CP-{i}").status is not None for i in (1, 2, 3))
            # It can pull what it missed, even while its own server is down.
            location = (await down.call("GET", live.module_url("locations") + "/DEPOT-1")).data
            assert {e["status"] for e in location["evses"]} == {"OUTOFORDER"}
            # Back up: the retries deliver (the latest status per EVSE).
            down.down = False
            assert live.gateway.ocpi is not None
            pushes = live.gateway.ocpi.context.pushes
            await until(lambda: pushes.pending("down") == 0, within_s=60)
    finally:
        await down.stop()
        await up.stop()


async def test_removed_charger_stays_as_removed(tmp_path: Path, peer: EmspPeer) -> None:
    async with live_ocpi(tmp_path, store_name="keep.sqlite3") as live:
        first = await peer.register_with(live.versions_url, live.token_a["emsp-a"])
        assert first.status_code == 1000
        before = (await peer.call("GET", live.module_url("locations") + "/DEPOT-1")).data
    async with live_ocpi(tmp_path, store_name="keep.sqlite3", chargers=2) as live:
        # Still registered across the restart: the same token C works.
        after = (await peer.call("GET", live.module_url("locations") + "/DEPOT-1")).data
        evses = {evse["uid"]: evse for evse in after["evses"]}
        assert set(evses) == {"CP-1", "CP-2", "CP-3"}
        assert evses["CP-3"]["status"] == "REMOVED"
        # Whole seconds on the wire: the removal is at or after the last publication.
        assert parse_datetime(evses["CP-3"]["last_updated"]) >= parse_datetime(
            before["last_updated"]
        )
        assert after["last_updated"] == max(e["last_updated"] for e in after["evses"])
        # The peer got the REMOVED EVSE pushed (PUT) at start.
        put = await peer.wait_for(
            lambda item: item.method == "PUT" and item.path.endswith("/DEPOT-1/CP-3")
        )
        assert put.body["status"] == "REMOVED"
        # The Location itself did not change: it is not pushed as a whole.
        assert not any(item.path.endswith("/NL/EVG/DEPOT-1") for item in peer.received)
