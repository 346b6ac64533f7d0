"""Offline authorization: the Local Authorization List and the authorization cache, through
the `ocpp`-package central system, a real pymodbus simulator and the real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from gateway.modbus import SimulatedCharger
from gateway.ocpp.authorization import AuthorizationCache, IdTagInfo
from gateway.runtime import Gateway
from gateway.store import Store
from tests.ocpp.central_system_ocpp import OcppPackageCsms
from tests.ocpp.test_offline_queue import fast_gateway, go_offline, wait_until
from tests.ocpp.test_station16 import CHARGER_ID, has_status

PAST = "2020-01-01T00:00:00Z"


def entry(id_tag: str, status: str | None = "Accepted", **info: Any) -> dict[str, Any]:
    if status is None:
        return {"idTag": id_tag}
    return {"idTag": id_tag, "idTagInfo": {"status": status, **info}}


async def send_list(
    csms: OcppPackageCsms, update_type: str, version: int, entries: list[dict[str, Any]]
) -> str:
    answer = await csms.charge_points[CHARGER_ID].call(
        call.SendLocalList(
            list_version=version, update_type=update_type, local_authorization_list=entries
        )
    )
    return str(answer.status)


async def list_version(csms: OcppPackageCsms) -> int:
    answer = await csms.charge_points[CHARGER_ID].call(call.GetLocalListVersion())
    return int(answer.list_version)


async def change(csms: OcppPackageCsms, key: str, value: str) -> None:
    answer = await csms.charge_points[CHARGER_ID].call(call.ChangeConfiguration(key, value))
    assert answer.status == "Accepted"


async def test_send_local_list_full_differential_versions_and_limits(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store = tmp_path / "evgw.sqlite3"
    async with fast_gateway(csms, simulator, store) as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        profiles = await csms.charge_points[CHARGER_ID].call(
            call.GetConfiguration(key=["SupportedFeatureProfiles"])
        )
        assert "LocalAuthListManagement" in profiles.configuration_key[0]["value"].split(",")
        assert await list_version(csms) == 0

        full = [entry("OK"), entry("BLOCKED", "Blocked"), entry("GONE")]
        assert await send_list(csms, "Full", 1, full) == "Accepted"
        assert await list_version(csms) == 1
        assert await send_list(csms, "Differential", 1, [entry("NEW")]) == "VersionMismatch"
        changes = [entry("GONE", None), entry("NEW"), entry("OK", "Expired")]
        assert await send_list(csms, "Differential", 2, changes) == "Accepted"
        assert await list_version(csms) == 2
        local_list = gateway.stations[CHARGER_ID].local_list.entries
        assert {k: v.status for k, v in local_list.items()} == {
            "OK": "Expired",
            "BLOCKED": "Blocked",
            "NEW": "Accepted",
        }
        too_many = [entry(f"T{n}") for n in range(251)]  # SendLocalListMaxLength is 250
        assert await send_list(csms, "Full", 3, too_many) == "Failed"
        assert await send_list(csms, "Full", 3, [entry("NO-INFO", None)]) == "Failed"
        assert await list_version(csms) == 2

    async with fast_gateway(csms, simulator, store) as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available", count=2))
        assert await list_version(csms) == 2  # the list survives a restart
        await change(csms, "LocalAuthListEnabled", "false")
        assert await list_version(csms) == -1
        assert await send_list(csms, "Full", 4, [entry("X")]) == "NotSupported"
        await change(csms, "LocalAuthListEnabled", "true")
        assert await send_list(csms, "Full", 4, []) == "Accepted"
        assert await list_version(csms) == 0  # an empty list


async def test_offline_decisions_follow_the_list_the_cache_and_the_keys(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    store = tmp_path / "evgw.sqlite3"
    csms.id_tag_infos["CACHED-BAD"] = {"status": "Blocked"}
    csms.id_tag_infos["CACHED-OLD"] = {"status": "Accepted", "expiryDate": PAST}
    async with fast_gateway(csms, simulator, store) as gateway:
        station = gateway.stations[CHARGER_ID]
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        listed = [entry("LIST-OK"), entry("LIST-BLOCKED", "Blocked"), entry("LIST-OLD")]
        listed[2]["idTagInfo"]["expiryDate"] = PAST
        assert await send_list(csms, "Full", 1, listed) == "Accepted"
        # Online: the central system decides, and the cache learns its answers.
        assert await station.authorize(CHARGER_ID, "CACHED-OK")
        assert not await station.authorize(CHARGER_ID, "CACHED-BAD")
        assert not await station.authorize(CHARGER_ID, "CACHED-OLD")
        assert set(station.cache) == {"CACHED-OK", "CACHED-BAD", "CACHED-OLD"}
        # LocalPreAuthorize: a valid list entry starts without asking.
        await change(csms, "LocalPreAuthorize", "true")
        assert await station.authorize(CHARGER_ID, "LIST-OK")
        asked = [m.payload["id_tag"] for m in csms.received[CHARGER_ID] if m.action == "Authorize"]
        assert asked == ["CACHED-OK", "CACHED-BAD", "CACHED-OLD"]

        await go_offline(csms, gateway)

        async def decisions(*id_tags: str) -> list[bool]:
            return [await station.authorize(CHARGER_ID, id_tag) for id_tag in id_tags]

        everyone = ("LIST-OK", "LIST-BLOCKED", "LIST-OLD", "CACHED-OK", "CACHED-BAD")
        assert await decisions(*everyone, "CACHED-OLD", "UNKNOWN") == [
            True,
            False,
            False,
            True,
            False,
            False,
            False,
        ]
        config = station.configuration
        assert config.change("AllowOfflineTxForUnknownId", "true").value == "Accepted"
        # Unknown identifiers pass now; those known as invalid or expired still do not.
        assert await decisions("UNKNOWN", "LIST-BLOCKED", "LIST-OLD", "CACHED-BAD") == [
            True,
            False,
            False,
            False,
        ]
        assert config.change("AllowOfflineTxForUnknownId", "false").value == "Accepted"
        assert config.change("AuthorizationCacheEnabled", "false").value == "Accepted"
        assert await decisions("CACHED-OK", "LIST-OK") == [False, True]
        assert config.change("AuthorizationCacheEnabled", "true").value == "Accepted"
        assert config.change("LocalAuthorizeOffline", "false").value == "Accepted"
        assert await decisions("CACHED-OK", "LIST-OK") == [False, False]

    # The cache and the list persist: a new gateway, still offline, decides the same.
    async with fast_gateway(csms, simulator, store) as gateway:
        station = gateway.stations[CHARGER_ID]
        await station.wait_loaded()
        assert await station.authorize(CHARGER_ID, "CACHED-OK")
        assert await station.authorize(CHARGER_ID, "LIST-OK")
        assert not await station.authorize(CHARGER_ID, "CACHED-BAD")
        await csms.start()
        await csms.wait_for_action(CHARGER_ID, "BootNotification", count=2)
        answer = await csms.charge_points[CHARGER_ID].call(call.ClearCache())
        assert answer.status == "Accepted"
        assert len(station.cache) == 0
    reopened = await Store.open(store)
    try:
        assert await reopened.auth_cache(CHARGER_ID) == []
    finally:
        await reopened.close()


async def offline_session_refused_afterwards(
    csms: OcppPackageCsms, simulator: SimulatedCharger, gateway: Gateway
) -> None:
    """An unknown identifier starts a session offline (AllowOfflineTxForUnknownId); when the
    central system is back it answers the StartTransaction with Invalid."""
    await csms.wait_for(CHARGER_ID, has_status("Available"))
    await change(csms, "AllowOfflineTxForUnknownId", "true")
    csms.id_tag_infos["STRANGER"] = {"status": "Invalid"}
    await go_offline(csms, gateway)
    simulator.plug_in(rfid="STRANGER", energy_needed_wh=50_000)
    station = gateway.stations[CHARGER_ID]
    await wait_until(lambda: any(m.action == "MeterValues" for m in station.outbox.messages))
    assert simulator.enabled
    await csms.start()
    await csms.wait_for_action(CHARGER_ID, "StartTransaction")


async def test_an_offline_start_refused_afterwards_is_stopped_deauthorized(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with fast_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway:
        await offline_session_refused_afterwards(csms, simulator, gateway)
        (start,) = await csms.wait_for_action(CHARGER_ID, "StartTransaction")
        (stop,) = await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        assert not simulator.enabled
        cached = gateway.stations[CHARGER_ID].cache.get("STRANGER")
    assert stop.payload["reason"] == "DeAuthorized"
    assert stop.payload["transaction_id"] == start.payload["transaction_id"]
    assert cached is not None
    assert cached.status == "Invalid"


async def test_without_stop_on_invalid_id_only_the_energy_is_cut(
    csms: OcppPackageCsms, simulator: SimulatedCharger, tmp_path: Path
) -> None:
    async with fast_gateway(csms, simulator, tmp_path / "evgw.sqlite3") as gateway:
        await csms.wait_for(CHARGER_ID, has_status("Available"))
        await change(csms, "StopTransactionOnInvalidId", "false")
        await offline_session_refused_afterwards(csms, simulator, gateway)
        await wait_until(lambda: not simulator.enabled)
        connector = gateway.site.connector(CHARGER_ID)
        assert connector.session is not None  # still open: no StopTransaction yet
        simulator.unplug()
        (stop,) = await csms.wait_for_action(CHARGER_ID, "StopTransaction")
        sent = [m.action for m in csms.received[CHARGER_ID]]
    assert stop.payload["reason"] == "EVDisconnected"
    assert sent.count("StopTransaction") == 1


def test_the_cache_evicts_invalid_entries_first_then_the_oldest() -> None:
    cache = AuthorizationCache(capacity=3)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    accepted, blocked = IdTagInfo("Accepted"), IdTagInfo("Blocked")
    expired = IdTagInfo("Accepted", expiry_date=now - timedelta(days=1))
    assert cache.learn("OLD", accepted, now) == []
    assert cache.learn("BAD", blocked, now + timedelta(minutes=1)) == []
    assert cache.learn("NEW", accepted, now + timedelta(minutes=2)) == []
    assert cache.learn("A", accepted, now + timedelta(minutes=3)) == ["BAD"]
    assert cache.learn("B", expired, now + timedelta(minutes=4)) == ["OLD"]
    assert cache.learn("C", accepted, now + timedelta(minutes=5)) == ["B"]  # expired = invalid
    assert set(cache) == {"NEW", "A", "C"}
    assert expired.effective_status(now) == "Expired"
