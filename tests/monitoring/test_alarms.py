"""Alarms on a running gateway over real Modbus simulators and a real central system: raised
once, cleared once, in the store, and the charger's uptime and fault history."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.monitoring.alarms import Alarm, AlarmKind, Severity
from gateway.runtime import Gateway
from tests.monitoring.site import FUSE_A, monitored_site, until
from tests.monitoring.test_metrics import scrape, value


def active(gateway: Gateway, kind: AlarmKind, source: str) -> Alarm | None:
    return next((a for a in gateway.alarms.active() if a.kind is kind and a.source == source), None)


def raised_logs(caplog: pytest.LogCaptureFixture, kind: AlarmKind, source: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if getattr(record, "alarm", {}).get("kind") == kind
        and record.alarm["source"] == source  # type: ignore[attr-defined]
        and record.getMessage().startswith("alarm raised")
    ]


async def test_a_charger_that_stops_answering_raises_then_clears_and_is_in_its_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.monitoring")
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        generic = site.chargers["CP-GENERIC"]
        await generic.stop()
        await until(
            lambda: active(gateway, AlarmKind.CHARGER_OFFLINE, "CP-GENERIC") is not None,
            "the offline alarm",
        )
        alarm = active(gateway, AlarmKind.CHARGER_OFFLINE, "CP-GENERIC")
        assert alarm is not None
        assert alarm.severity is Severity.WARNING
        assert "CP-GENERIC" in alarm.message
        assert active(gateway, AlarmKind.CHARGER_OFFLINE, "CP-KEBA") is None
        samples = scrape(gateway)
        assert value(samples, "evgw_alarms_active", kind="charger_offline") == 1.0
        assert value(samples, "evgw_alarms_active", kind="charger_fault") == 0.0
        # Logged once, however many checks (every 0.2 s) find it still offline.
        checks = 0
        while checks < 10:
            await gateway.alarms.check()
            checks += 1
        assert len(raised_logs(caplog, AlarmKind.CHARGER_OFFLINE, "CP-GENERIC")) == 1

        await generic.start(port=site.ports["CP-GENERIC"])
        await until(
            lambda: active(gateway, AlarmKind.CHARGER_OFFLINE, "CP-GENERIC") is None,
            "the offline alarm clears",
        )
        cleared = next(a for a in gateway.alarms.history(10) if a.id == alarm.id)
        assert cleared.cleared_at is not None
        assert cleared.cleared_at >= alarm.raised_at
        assert len(raised_logs(caplog, AlarmKind.CHARGER_OFFLINE, "CP-GENERIC")) == 1
        clearing = [
            r for r in caplog.records if r.getMessage().startswith("alarm cleared: charger CP-G")
        ]
        assert len(clearing) == 1

        # The uptime history has the episode, backdated to when it stopped answering.
        episodes = await gateway.charger_history.episodes("CP-GENERIC")
        assert [e.kind for e in episodes] == ["offline"]
        assert episodes[0].started_at == alarm.raised_at
        assert episodes[0].ended_at is not None
        summary = {u.charger_id: u for u in await gateway.charger_history.summary()}
        generic_uptime = summary["CP-GENERIC"].uptime_percent
        assert generic_uptime is not None
        assert generic_uptime < 100.0
        assert summary["CP-GENERIC"].offline_s > 0
        assert "CP-KEBA" not in summary  # nothing recorded for it
        both = await gateway.charger_history.summary(["CP-KEBA", "CP-GENERIC"])
        assert both[0].uptime_percent == 100.0

        # And the alarm is in the store, cleared.
        rows = await gateway.store.read(
            lambda db: db.execute(
                "SELECT kind, source, cleared_at FROM monitoring_alarms"
            ).fetchall()
        )
        assert [(r[0], r[1], r[2] is not None) for r in rows] == [
            ("charger_offline", "CP-GENERIC", True)
        ]


async def test_a_fault_code_raises_an_alarm_with_the_codes_and_counts_as_a_fault(
    tmp_path: Path,
) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        keba = site.chargers["CP-KEBA"]
        keba.inject_fault(error_code=7)
        await until(
            lambda: active(gateway, AlarmKind.CHARGER_FAULT, "CP-KEBA") is not None,
            "the fault alarm",
        )
        alarm = active(gateway, AlarmKind.CHARGER_FAULT, "CP-KEBA")
        assert alarm is not None
        assert alarm.severity is Severity.ERROR
        assert "vendor code 7" in alarm.message
        keba.clear_fault()
        await until(
            lambda: active(gateway, AlarmKind.CHARGER_FAULT, "CP-KEBA") is None,
            "the fault alarm clears",
        )
        (uptime,) = await gateway.charger_history.summary(["CP-KEBA"])
        assert uptime.faults == 1
        assert uptime.last_fault is not None
        assert "vendor code 7" in uptime.last_fault.detail
        assert uptime.last_fault.ended_at is not None
        assert uptime.uptime_percent == 100.0  # a fault is not downtime: it still answered


async def test_a_circuit_near_its_fuse_raises_and_clears_with_hysteresis(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        # Building load at 97 % of the fuse on L2 (no EV charges).
        site.meter.base_load_a = (0.0, 0.97 * FUSE_A, 0.0)
        await until(
            lambda: active(gateway, AlarmKind.CIRCUIT_NEAR_LIMIT, "grid") is not None,
            "the circuit alarm",
        )
        alarm = active(gateway, AlarmKind.CIRCUIT_NEAR_LIMIT, "grid")
        assert alarm is not None
        assert alarm.severity is Severity.CRITICAL
        assert "on L2" in alarm.message
        assert "97%" in alarm.message
        # 92 %: below the alarm share, above the clear share: still active.
        site.meter.base_load_a = (0.0, 0.92 * FUSE_A, 0.0)
        await until(
            lambda: (
                gateway.southbound.meters["grid"].latest() is not None
                and abs(gateway.southbound.meters["grid"].latest().current_a[1] - 0.92 * FUSE_A)  # type: ignore[union-attr]
                < 0.1
            ),
            "the meter reads 92 %",
        )
        for _ in range(5):
            await gateway.alarms.check()
        assert active(gateway, AlarmKind.CIRCUIT_NEAR_LIMIT, "grid") is not None
        site.meter.base_load_a = (0.0, 0.5 * FUSE_A, 0.0)
        await until(
            lambda: active(gateway, AlarmKind.CIRCUIT_NEAR_LIMIT, "grid") is None,
            "the circuit alarm clears",
        )


async def test_a_lost_uplink_and_a_growing_queue_raise_alarms(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        await until(lambda: all(s.online for s in gateway.stations.values()), "stations registered")
        await site.csms.stop()
        await until(
            lambda: all(
                active(gateway, AlarmKind.UPLINK_LOST, cid) is not None for cid in site.chargers
            ),
            "an uplink alarm per station",
        )
        # A session while offline: its StartTransaction and StopTransaction wait in the
        # queue, two messages, over the threshold of 1.
        keba = site.chargers["CP-KEBA"]
        keba.plug_in(energy_needed_wh=50_000.0)
        await gateway.site.remote_start("CP-KEBA", 1, "TAG-OFFLINE")
        await until(lambda: gateway.site.connector("CP-KEBA").session is not None, "a session")
        keba.unplug()
        await until(
            lambda: active(gateway, AlarmKind.QUEUE_GROWING, "CP-KEBA") is not None,
            "the queue alarm",
        )
        alarm = active(gateway, AlarmKind.QUEUE_GROWING, "CP-KEBA")
        assert alarm is not None
        assert "2 OCPP messages queued" in alarm.message
        await site.csms.start()
        await until(
            lambda: not any(a.kind is AlarmKind.UPLINK_LOST for a in gateway.alarms.active()),
            "the uplink alarms clear",
        )
        await until(
            lambda: active(gateway, AlarmKind.QUEUE_GROWING, "CP-KEBA") is None,
            "the queue drains and its alarm clears",
        )
        kinds = {a.kind for a in gateway.alarms.history(100)}
        assert {AlarmKind.UPLINK_LOST, AlarmKind.QUEUE_GROWING} <= kinds
