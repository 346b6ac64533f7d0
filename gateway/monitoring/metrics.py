"""Prometheus metrics of a running gateway (`/metrics`).

Everything that is a state (currents, setpoints, statuses, queue depths, circuit loads, the
protocols' counters) is read from the live objects when Prometheus scrapes, by one custom
collector: nothing is updated per reading, so a thousand chargers polled every second cost
nothing between scrapes, and a scrape costs a few samples per charger. Only the two
distributions (poll latency per transport, the balancing solver's time per tick) are
observed as they happen, into `prometheus_client` histograms of the gateway's own registry.

Units follow Prometheus' conventions: amperes, watts, joules, seconds; counters end in
`_total`. Per charger: `evgw_charger_{current_amperes{phase},power_watts,energy_joules_total,
setpoint_amperes,allocated_amperes,online,status{status},fault_code}`; per circuit:
`evgw_circuit_{limit,measured,allocated}_amperes{phase}`; per OCPP station:
`evgw_ocpp_{queue_messages,connected}`; per protocol: `evgw_ocpp_messages_{sent,received}
_total{action,type}`, `evgw_ocpp_errors_total{action,kind}`, `evgw_modbus_{requests,
timeouts,exception_responses,connection_errors}_total{bus}`, `evgw_mqtt_messages_{received,
published}_total`, `evgw_mqtt_malformed_total{charger,reason}`; `evgw_poll_duration_seconds
{transport}`, `evgw_poll_failures_total{transport}`, `evgw_balancing_solve_duration_seconds`,
`evgw_alarms_active{kind,severity}`.
"""

from __future__ import annotations

import contextlib
import platform
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from gateway import __version__
from gateway.balancing.topology import GRID_PHASE_NAMES
from gateway.core.status import ConnectorStatus
from gateway.monitoring.alarms import SEVERITY, AlarmKind
from gateway.monitoring.circuit_load import CircuitLoads
from gateway.mqtt import MqttCharger

if TYPE_CHECKING:
    from gateway.runtime import Gateway

POLL_BUCKETS_S: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""A Modbus TCP poll on a LAN takes milliseconds, an RS-485 bus at 19200 baud tens to
hundreds; a charger that does not answer takes the link's timeout (2-3 s)."""
SOLVE_BUCKETS_S: Final = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0)
"""The Rust solver takes microseconds for a depot and milliseconds for thousands of chargers
(benches/bench_balancing.py)."""
JOULES_PER_WH: Final = 3600.0


class GatewayMetrics:
    """The gateway's registry: the histograms fed as things happen, and the collector that
    reads everything else at scrape time. Made by `Gateway`; `exposition()` renders it."""

    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        self.poll_duration = Histogram(
            "evgw_poll_duration_seconds",
            "Time a charger poll (one consistent read) took, by transport.",
            ["transport"],
            buckets=POLL_BUCKETS_S,
            registry=self.registry,
        )
        self.poll_failures = Counter(
            "evgw_poll_failures",
            "Charger polls that got no answer, by transport.",
            ["transport"],
            registry=self.registry,
        )
        self.solve_duration = Histogram(
            "evgw_balancing_solve_duration_seconds",
            "Time the balancing solver took per tick.",
            buckets=SOLVE_BUCKETS_S,
            registry=self.registry,
        )
        transports = {charger.id: charger.transport for charger in gateway.config.chargers}
        # Label children bound once per charger: an observation is then a dict lookup and
        # an addition, no allocation.
        self._per_charger = {
            charger_id: (
                self.poll_duration.labels(transport),
                self.poll_failures.labels(transport),
            )
            for charger_id, transport in transports.items()
        }
        self.registry.register(_GatewayCollector(gateway))

    def observe_poll(self, charger_id: str, seconds: float, answered: bool) -> None:
        """`Site.poll_observer`."""
        children = self._per_charger.get(charger_id)
        if children is None:
            return
        children[0].observe(seconds)
        if not answered:
            children[1].inc()

    def observe_solve(self, seconds: float) -> None:
        """`BalancingLoop.solve_observer`."""
        self.solve_duration.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_exposition(gateway: Gateway) -> tuple[bytes, str]:
    """The Prometheus text exposition of `gateway` and its content type: the classic text
    format 0.0.4, which every Prometheus (2.x, 3.x) and scraping agent parses; every name
    here is a legacy-valid one, so the body is the same in format 1.0.0."""
    return gateway.metrics.exposition(), CONTENT_TYPE_PLAIN_0_0_4


class _GatewayCollector(Collector):
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self._loads = CircuitLoads(gateway.config)

    def describe(self) -> Iterator[Metric]:
        # Nothing to check against other collectors of this registry; describing would
        # otherwise make the registry call collect() before the gateway runs.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        yield from self._chargers()
        yield from self._circuits()
        yield from self._ocpp()
        yield from self._modbus()
        yield from self._mqtt()
        yield from self._alarms()
        info = GaugeMetricFamily(
            "evgw_build_info", "The gateway's version.", labels=["version", "python"]
        )
        info.add_metric([__version__, platform.python_version()], 1.0)
        yield info

    def _chargers(self) -> Iterator[Metric]:
        site = self._gateway.site
        current = GaugeMetricFamily(
            "evgw_charger_current_amperes",
            "Current the charger reports per supply phase.",
            labels=["charger", "phase"],
        )
        power = GaugeMetricFamily(
            "evgw_charger_power_watts", "Active power the charger reports.", labels=["charger"]
        )
        energy = CounterMetricFamily(
            "evgw_charger_energy_joules",
            "The charger's lifetime energy register (1 Wh = 3600 J).",
            labels=["charger"],
        )
        setpoint = GaugeMetricFamily(
            "evgw_charger_setpoint_amperes",
            "The current limit the charger reports in force (0 = paused).",
            labels=["charger"],
        )
        allocated = GaugeMetricFamily(
            "evgw_charger_allocated_amperes",
            "The current the load balancing granted (absent when not balanced).",
            labels=["charger"],
        )
        online = GaugeMetricFamily(
            "evgw_charger_online", "1 when the charger answered its last poll.", labels=["charger"]
        )
        status = GaugeMetricFamily(
            "evgw_charger_status",
            "The connector's status: one sample per charger, value 1, the status a label.",
            labels=["charger", "status"],
        )
        fault = GaugeMetricFamily(
            "evgw_charger_fault_code",
            "The charger's vendor fault code; only a charger reporting a fault has a sample.",
            labels=["charger"],
        )
        for charger_id in site.charger_ids:
            connector = site.connector(charger_id)
            online.add_metric([charger_id], 1.0 if connector.online else 0.0)
            state = connector.status
            status.add_metric(
                [charger_id, str(state if state is not None else ConnectorStatus.UNAVAILABLE)],
                1.0,
            )
            if connector.allocated_current_a is not None:
                allocated.add_metric([charger_id], connector.allocated_current_a)
            reading = connector.reading
            if reading is None:
                continue
            for phase, amps in zip(GRID_PHASE_NAMES, reading.current_a, strict=True):
                current.add_metric([charger_id, phase], amps)
            power.add_metric([charger_id], reading.power_w)
            energy.add_metric([charger_id], reading.energy_wh * JOULES_PER_WH)
            setpoint.add_metric([charger_id], reading.setpoint_a)
            if reading.error_code:
                fault.add_metric([charger_id], float(reading.error_code))
        yield from (current, power, energy, setpoint, allocated, online, status, fault)

    def _circuits(self) -> Iterator[Metric]:
        if not self._loads.circuits:
            return
        gateway = self._gateway
        active_phases: dict[str, int] = {}
        if gateway.balancing is not None:
            switcher = gateway.balancing.controller.phases
            for charger in gateway.config.chargers:
                if charger.id in switcher:
                    active_phases[charger.id] = switcher.phases(charger.id)
        families = {
            name: GaugeMetricFamily(
                f"evgw_circuit_{name}_amperes", text, labels=["circuit", "phase"]
            )
            for name, text in (
                ("limit", "The circuit's fuse limit per grid phase."),
                (
                    "measured",
                    "Current on the circuit per grid phase (its meter, else the sum"
                    " of its chargers' readings).",
                ),
                ("allocated", "Current the balancing granted the chargers below the circuit."),
            )
        }
        metered = GaugeMetricFamily(
            "evgw_circuit_metered",
            "1 when the circuit's measurement comes from a fresh meter reading.",
            labels=["circuit"],
        )
        for load in self._loads.read(gateway.site, gateway.southbound.meters, active_phases):
            for index, phase in enumerate(GRID_PHASE_NAMES):
                labels = [load.circuit_id, phase]
                families["limit"].add_metric(labels, load.limit_a[index])
                families["measured"].add_metric(labels, load.measured_a[index])
                families["allocated"].add_metric(labels, load.allocated_a[index])
            metered.add_metric([load.circuit_id], 1.0 if load.metered else 0.0)
        yield from families.values()
        yield metered

    def _ocpp(self) -> Iterator[Metric]:
        gateway = self._gateway
        depth = GaugeMetricFamily(
            "evgw_ocpp_queue_messages",
            "Transaction messages waiting in the station's durable offline queue.",
            labels=["charger"],
        )
        connected = GaugeMetricFamily(
            "evgw_ocpp_connected",
            "1 while the station's WebSocket to the central system is up.",
            labels=["charger"],
        )
        sent: Tally[tuple[str, str]] = Tally()
        received: Tally[tuple[str, str]] = Tally()
        errors: Tally[tuple[str, str]] = Tally()
        stations = [*gateway.stations.values(), *gateway.stations_201.values()]
        for station in stations:
            connected.add_metric([station.charger_id], 1.0 if station.connection.connected else 0.0)
            with contextlib.suppress(RuntimeError):  # not running yet: no queue loaded
                depth.add_metric([station.charger_id], float(len(station.outbox)))
            stats = station.connection.stats
            sent.update(stats.sent)
            received.update(stats.received)
            errors.update(stats.errors)
        sent_family = CounterMetricFamily(
            "evgw_ocpp_messages_sent",
            "OCPP frames sent upstream: our CALLs and our answers to the central system's.",
            labels=["action", "type"],
        )
        received_family = CounterMetricFamily(
            "evgw_ocpp_messages_received",
            "Valid OCPP frames received: the central system's CALLs and its replies to ours.",
            labels=["action", "type"],
        )
        errors_family = CounterMetricFamily(
            "evgw_ocpp_errors",
            "OCPP failures: timeout, call_error, invalid_result, malformed, late_reply.",
            labels=["action", "kind"],
        )
        for family, tally in (
            (sent_family, sent),
            (received_family, received),
            (errors_family, errors),
        ):
            for (action, kind), count in sorted(tally.items()):
                family.add_metric([action, kind], float(count))
        yield from (depth, connected, sent_family, received_family, errors_family)

    def _modbus(self) -> Iterator[Metric]:
        counters = {
            name: CounterMetricFamily(f"evgw_modbus_{name}", text, labels=["bus"])
            for name, text in (
                ("requests", "Modbus requests asked of the bus."),
                ("timeouts", "Modbus requests without an answer in time."),
                ("exception_responses", "Modbus requests answered with an exception."),
                ("connection_errors", "Modbus requests failed on the connection or port."),
            )
        }
        for link in self._gateway.southbound.pool.links:
            bus = link.endpoint
            counters["requests"].add_metric([bus], float(link.requests))
            counters["timeouts"].add_metric([bus], float(link.timeouts))
            counters["exception_responses"].add_metric([bus], float(link.exception_responses))
            counters["connection_errors"].add_metric([bus], float(link.connection_errors))
        yield from counters.values()

    def _mqtt(self) -> Iterator[Metric]:
        southbound = self._gateway.southbound
        client = southbound.mqtt
        if client is None:
            return
        connected = GaugeMetricFamily("evgw_mqtt_connected", "1 while the broker connection is up.")
        connected.add_metric([], 1.0 if client.connected else 0.0)
        received = CounterMetricFamily(
            "evgw_mqtt_messages_received", "MQTT messages received from the broker."
        )
        received.add_metric([], float(client.messages_received))
        published = CounterMetricFamily(
            "evgw_mqtt_messages_published", "MQTT messages published (commands, keep-alives)."
        )
        published.add_metric([], float(client.messages_published))
        malformed = CounterMetricFamily(
            "evgw_mqtt_malformed",
            "MQTT payloads refused as malformed, by charger and reason.",
            labels=["charger", "reason"],
        )
        for charger_id, driver in southbound.drivers.items():
            if isinstance(driver, MqttCharger):
                for reason, count in sorted(driver.malformed.items()):
                    malformed.add_metric([charger_id, reason], float(count))
        yield from (connected, received, published, malformed)

    def _alarms(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "evgw_alarms_active", "Alarms raised and not cleared.", labels=["kind", "severity"]
        )
        counts: Tally[AlarmKind] = Tally(alarm.kind for alarm in self._gateway.alarms.active())
        for kind in AlarmKind:  # every kind, 0 when quiet, for alert rules
            family.add_metric([str(kind), str(SEVERITY[kind])], float(counts[kind]))
        yield family
