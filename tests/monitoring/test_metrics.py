"""The Prometheus exposition of a running gateway, parsed with prometheus_client's own
parser, against what the simulated chargers, the meter and the central system did."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from gateway.monitoring.metrics import metrics_exposition
from gateway.runtime import Gateway
from tests.monitoring.site import FUSE_A, monitored_site, until


def scrape(gateway: Gateway) -> dict[str, list[Sample]]:
    body, content_type = metrics_exposition(gateway)
    assert content_type.startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s.value for s in samples.get(name, []) if labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


async def test_the_exposition_matches_the_simulated_site(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        for index, (charger_id, sim) in enumerate(site.chargers.items()):
            sim.plug_in(energy_needed_wh=50_000.0, max_current_a=16.0)
            await gateway.site.remote_start(charger_id, 1, f"TAG-{index}")
        await until(
            lambda: all(sim.current_a > 15.0 for sim in site.chargers.values()),
            "both EVs charge at 16 A",
        )
        await site.csms.wait_for_action("CP-KEBA", "StartTransaction")
        await site.csms.wait_for_action("CP-GENERIC", "StartTransaction")
        # Steady: the EVs follow their 16 A setpoints and the gateway has read them.
        await until(
            lambda: all(
                (reading := gateway.site.connector(cid).reading) is not None
                and min(reading.current_a) > 15.0
                for cid in site.chargers
            ),
            "the gateway reads 16 A on every phase",
        )
        samples = scrape(gateway)

        for charger_id, sim in site.chargers.items():
            for phase, amps in zip(("L1", "L2", "L3"), sim.phase_currents_a, strict=True):
                measured = value(
                    samples, "evgw_charger_current_amperes", charger=charger_id, phase=phase
                )
                assert abs(measured - amps) < 1.0, (charger_id, phase, measured, amps)
            assert value(samples, "evgw_charger_setpoint_amperes", charger=charger_id) == (
                sim.setpoint_a
            )
            assert value(samples, "evgw_charger_online", charger=charger_id) == 1.0
            assert value(samples, "evgw_charger_status", charger=charger_id, status="Charging") == (
                1.0
            )
            joules = value(samples, "evgw_charger_energy_joules_total", charger=charger_id)
            # The EV keeps charging between the poll and now: the register lags behind.
            assert 0 < joules / 3600.0 <= sim.energy_wh + 1e-6
            assert sim.energy_wh - joules / 3600.0 < 200.0  # a minute of lag at 11 kW
            power = value(samples, "evgw_charger_power_watts", charger=charger_id)
            assert abs(power - sim.power_w) < 3 * 230.0
            assert value(samples, "evgw_charger_allocated_amperes", charger=charger_id) == 16.0
            assert value(samples, "evgw_ocpp_connected", charger=charger_id) == 1.0
            assert value(samples, "evgw_ocpp_queue_messages", charger=charger_id) == 0.0

        # The circuit: its fuse, the meter's measurement (our two chargers), the grants.
        for index, phase in enumerate(("L1", "L2", "L3")):
            assert value(samples, "evgw_circuit_limit_amperes", circuit="grid", phase=phase) == (
                FUSE_A
            )
            measured = value(samples, "evgw_circuit_measured_amperes", circuit="grid", phase=phase)
            # The meter's last poll, against what it measures now (the EVs hover at 16 A).
            assert abs(measured - site.meter.current_a[index]) < 2.0, measured
            assert value(
                samples, "evgw_circuit_allocated_amperes", circuit="grid", phase=phase
            ) == (32.0)
        assert value(samples, "evgw_circuit_metered", circuit="grid") == 1.0

        # Protocol counters: each station booted, the central system answered.
        boots_sent = value(
            samples, "evgw_ocpp_messages_sent_total", action="BootNotification", type="call"
        )
        assert boots_sent >= 2
        assert (
            value(
                samples,
                "evgw_ocpp_messages_received_total",
                action="BootNotification",
                type="result",
            )
            >= 2
        )
        assert (
            value(samples, "evgw_ocpp_messages_sent_total", action="StartTransaction", type="call")
            == 2
        )
        requests = sum(s.value for s in samples["evgw_modbus_requests_total"])
        assert requests > 10
        assert len(samples["evgw_modbus_requests_total"]) == 3  # two chargers, one meter
        assert value(samples, "evgw_poll_duration_seconds_count", transport="tcp") > 10
        assert value(samples, "evgw_balancing_solve_duration_seconds_count") >= 1
        assert value(samples, "evgw_alarms_active", kind="charger_offline") == 0.0

        # Counters only grow: a second scrape after more polls has more requests.
        await until(
            lambda: sum(s.value for s in scrape(gateway)["evgw_modbus_requests_total"]) > requests,
            "more Modbus requests",
        )


async def test_a_charger_that_stops_answering_shows_in_the_metrics(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        await until(lambda: all(s.online for s in gateway.stations.values()), "stations registered")
        # The central system refuses the Unavailable status with a CALLERROR.
        site.csms.fail_calls["StatusNotification"] = 1
        await site.chargers["CP-GENERIC"].stop()
        await until(lambda: not gateway.site.connector("CP-GENERIC").online, "the gateway notices")
        stats = gateway.stations["CP-GENERIC"].connection.stats
        await until(
            lambda: stats.errors[("StatusNotification", "call_error")] == 1,
            "the CALLERROR arrives",
        )
        samples = scrape(gateway)
        assert (
            value(samples, "evgw_ocpp_errors_total", action="StatusNotification", kind="call_error")
            == 1.0
        )
        assert (
            value(
                samples,
                "evgw_ocpp_messages_received_total",
                action="StatusNotification",
                type="error",
            )
            == 1.0
        )
        assert value(samples, "evgw_charger_online", charger="CP-GENERIC") == 0.0
        assert value(samples, "evgw_charger_online", charger="CP-KEBA") == 1.0
        assert (
            value(samples, "evgw_charger_status", charger="CP-GENERIC", status="Unavailable") == 1.0
        )
        assert value(samples, "evgw_poll_failures_total", transport="tcp") >= 1
        bus = f"127.0.0.1:{site.ports['CP-GENERIC']}"
        failures = value(samples, "evgw_modbus_connection_errors_total", bus=bus) + value(
            samples, "evgw_modbus_timeouts_total", bus=bus
        )
        assert failures >= 1
