"""The running gateway, assembled from a configuration: the store, the southbound drivers and
meters, the site, one OCPP station per charger, and the balancing loop over the fuse tree.

The command line (`gateway.cli`), the demo and the simulator all start it through `Gateway`.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Final

from gateway import __version__
from gateway.api import ApiServer
from gateway.balancing import BalancedCharger, BalancingController, BalancingLoop, PlannerSettings
from gateway.balancing.loop import UsualNeed
from gateway.balancing.phases import PhaseSwitchSettings
from gateway.config import ConfigError, GatewayConfig, station_security
from gateway.core.site import ChargerSpec, Site
from gateway.monitoring.alarms import AlarmMonitor
from gateway.monitoring.history import ChargerHistory
from gateway.monitoring.log_records import recent_logs
from gateway.monitoring.metrics import GatewayMetrics
from gateway.ocpi.service import OcpiService
from gateway.ocpp.rpc import DEFAULT_CALL_TIMEOUT_S
from gateway.ocpp.shared_station import SharedStation, SharedStationSpec
from gateway.ocpp.station import ChargePointIdentity, DiagnosticsProvider, StationCore
from gateway.ocpp.v16.configuration import StationConfiguration
from gateway.ocpp.v16.station import Station16
from gateway.ocpp.v201.device_model import DeviceModel
from gateway.ocpp.v201.station import Station201
from gateway.shutdown import leave_chargers_at_failsafe
from gateway.southbound import Southbound
from gateway.store import Store

logger = logging.getLogger("gateway")

DEFAULT_VENDOR: Final = "evgw"


class Gateway:
    """The running gateway: store, southbound drivers and meters, the site, one OCPP station
    per charger, and the balancing loop when circuits are configured.

    `await Gateway.open(config)`, then `await run()` until cancelled, then `await close()`.
    """

    def __init__(
        self, config: GatewayConfig, store: Store, southbound: Southbound, site: Site
    ) -> None:
        self.config = config
        self.store = store
        self.site = site
        self.southbound = southbound
        self.stations: dict[str, Station16] = {}
        """The chargers presented upstream as OCPP 1.6 charge points."""
        self.stations_201: dict[str, Station201] = {}
        """The chargers presented upstream as OCPP 2.0.1 charging stations."""
        self.shared_stations: dict[str, SharedStation] = {}
        """[[upstream.stations]] groups: one identity upstream for several of the stations
        above, which talk through it (`gateway.ocpp.shared_station`)."""
        self.balancing: BalancingLoop | None = None
        """The load-balancing loop, when the configuration has [[circuits]]."""
        self.charger_history = ChargerHistory(store)
        """Uptime and fault history per charger (`gateway.monitoring.history`)."""
        self.alarms = AlarmMonitor(self, history=self.charger_history)
        """Raises and clears the alarms (`gateway.monitoring.alarms`)."""
        self.metrics = GatewayMetrics(self)
        """The Prometheus registry (`gateway.monitoring.metrics`)."""
        site.poll_observer = self.metrics.observe_poll
        recent_logs()  # the diagnostics bundle's recent logs, also without a log file
        self.api: ApiServer | None = None
        """The local HTTP API and dashboard, when the configuration has [api]."""
        self.ocpi: OcpiService | None = None
        """The OCPI 2.2.1 CPO server and its partners, when the configuration has [ocpi]."""

    @classmethod
    async def open(cls, config: GatewayConfig) -> Gateway:
        """Open the store and wire every charger. Raises `ConfigError` for an unknown
        profile or a bus named with two settings, `StoreError` for an unusable database."""
        southbound = Southbound.build(config)
        store = await Store.open(config.gateway.store)
        site = Site(
            ledger=store,
            reservations=store,
            connection_timeout_s=config.upstream.connection_timeout_s,
        )
        gateway = cls(config, store, southbound, site)
        for charger in config.chargers:
            site.add_charger(
                ChargerSpec(
                    charger.id,
                    max_current_a=charger.max_current_a,
                    phases=charger.phases,
                    poll_interval_s=charger.poll_interval_s,
                ),
                southbound.drivers[charger.id],
            )
            identity = ChargePointIdentity(
                vendor=charger.vendor or DEFAULT_VENDOR,
                model=charger.model or southbound.capabilities[charger.id].model[:20],
                serial_number=charger.serial_number,
                firmware_version=f"evgw {__version__}",
            )
            version = charger.ocpp_version or config.upstream.ocpp_version
            security = station_security(config.upstream, charger)
            diagnostics = _diagnostics_provider(gateway)
            if version == "2.0.1":
                gateway.stations_201[charger.id] = Station201(
                    site,
                    charger.id,
                    base_url=config.upstream.url,
                    identity=identity,
                    device_model=DeviceModel(
                        heartbeat_interval_s=config.upstream.heartbeat_interval_s,
                        tx_updated_interval_s=config.upstream.meter_value_sample_interval_s,
                        ev_connection_timeout_s=config.upstream.connection_timeout_s,
                        message_timeout_s=round(DEFAULT_CALL_TIMEOUT_S),
                        security_profile=int(security.profile),
                    ),
                    store=store,
                    security=security,
                    diagnostics=diagnostics,
                )
                continue
            gateway.stations[charger.id] = Station16(
                site,
                charger.id,
                base_url=config.upstream.url,
                identity=identity,
                configuration=StationConfiguration(
                    heartbeat_interval_s=config.upstream.heartbeat_interval_s,
                    meter_value_sample_interval_s=config.upstream.meter_value_sample_interval_s,
                    connection_timeout_s=config.upstream.connection_timeout_s,
                    security_profile=int(security.profile),
                ),
                store=store,
                security=security,
                diagnostics=diagnostics,
            )
        for group in config.upstream.stations:
            members: list[StationCore] = [
                gateway.stations.get(charger_id) or gateway.stations_201[charger_id]
                for charger_id in group.chargers
            ]
            gateway.shared_stations[group.id] = SharedStation(
                SharedStationSpec(group.id, group.chargers, group.serial_number),
                members,
                base_url=config.upstream.url,
            )
        if config.circuits:
            gateway.balancing = _balancing_loop(config, site, southbound)
            gateway.balancing.solve_observer = gateway.metrics.observe_solve
            # OCPP charging profiles become the balancer's caps (gateway.ocpp.smart_charging).
            for any_station in [*gateway.stations.values(), *gateway.stations_201.values()]:
                any_station.smart_charging.balancing = gateway.balancing
        if config.api is not None:
            gateway.api = ApiServer(gateway, config.api)
        if config.ocpi is not None:
            gateway.ocpi = await OcpiService.open(config, site, store, balancing=gateway.balancing)
        return gateway

    async def run(self) -> None:
        """Poll and serve until cancelled."""
        await self.southbound.start()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.site.run(), name="site")
            tasks.create_task(self.southbound.run(), name="meters")
            tasks.create_task(self.alarms.run(), name="alarms")
            if self.balancing is not None:
                tasks.create_task(self.balancing.run(), name="balancing")
            if self.api is not None:
                tasks.create_task(self.api.run(), name="api")
            if self.ocpi is not None:
                tasks.create_task(self.ocpi.run(), name="ocpi")
            for station in self.stations.values():
                tasks.create_task(station.run(), name=f"station-{station.charger_id}")
            for station_201 in self.stations_201.values():
                tasks.create_task(station_201.run(), name=f"station-{station_201.charger_id}")
            for shared in self.shared_stations.values():
                tasks.create_task(shared.run(), name=f"shared-station-{shared.identity}")

    async def close(self) -> None:
        """After `run()` has ended: leave every reachable charger at its failsafe current
        (`gateway.shutdown`), close the links, then the store (committed, WAL checkpointed)."""
        await leave_chargers_at_failsafe(
            self.site, {charger.id: charger.failsafe_current_a for charger in self.config.chargers}
        )
        if self.ocpi is not None:
            await self.ocpi.close()
        if self.api is not None:
            await self.api.stop()  # when started outside run() (the demo) and never run
        await self.southbound.close()
        await self.store.close()


def _balancing_loop(config: GatewayConfig, site: Site, southbound: Southbound) -> BalancingLoop:
    root = config.root_circuit
    assert root is not None  # parse_config checked the tree
    chargers = []
    problems = []
    for index, charger in enumerate(config.chargers):
        capabilities = southbound.capabilities[charger.id]
        if charger.phase_switching and not capabilities.can_switch_phases:
            problems.append(
                f"chargers[{index}].phase_switching: {capabilities.model} cannot switch phases"
                " (its profile has no [writes.phases])"
            )
        chargers.append(
            BalancedCharger(
                id=charger.id,
                circuit=charger.circuit or root,
                phases=charger.phases,
                phase_rotation=charger.effective_rotation,
                min_current_a=max(charger.min_current_a, capabilities.min_current_a),
                # A charger never offers more than its register takes.
                max_current_a=min(charger.max_current_a, capabilities.max_current_a),
                failsafe_current_a=charger.failsafe_current_a,
                watchdog_timeout_s=charger.watchdog_timeout_s if capabilities.has_watchdog else 0,
                priority=charger.priority,
                resolution_a=capabilities.resolution_a,
                can_switch_phases=charger.phase_switching,
            )
        )
    if problems:
        raise ConfigError(problems)
    try:
        controller = BalancingController(
            [circuit.circuit for circuit in config.circuits],
            chargers,
            PlannerSettings(config.balancing.ramp_a_per_s, config.balancing.deadband_a),
            min_run_s=config.balancing.min_run_s,
            phase_settings=PhaseSwitchSettings(
                up_delay_s=config.balancing.phase_up_delay_s,
                min_dwell_s=config.balancing.phase_min_dwell_s,
                max_switches=config.balancing.max_phase_switches,
            ),
        )
    except ValueError as error:
        raise ConfigError([f"circuits: {error}"]) from error
    return BalancingLoop(
        site,
        controller,
        interval_s=config.balancing.interval_s,
        meters=southbound.meters,
        usual_needs={
            charger.id: UsualNeed(charger.departure, charger.energy_needed_kwh * 1000.0)
            for charger in config.chargers
            if charger.departure is not None and charger.energy_needed_kwh is not None
        },
    )


def check_config(config: GatewayConfig, *, source: str = "configuration") -> str:
    """Build everything `Gateway.open` builds that needs no I/O (drivers from their profiles,
    links, meters, the balancing over the fuse tree) and return a one-line summary. Raises
    `ConfigError` naming the key and the problem."""
    try:
        southbound = Southbound.build(config)
        if config.circuits:
            site = Site()
            for charger in config.chargers:
                site.add_charger(
                    ChargerSpec(charger.id, max_current_a=charger.max_current_a),
                    southbound.drivers[charger.id],
                )
            _balancing_loop(config, site, southbound)
    except ConfigError as error:
        raise ConfigError(error.problems, source) from error
    transports: dict[str, int] = {}
    for charger in config.chargers:
        transports[charger.transport] = transports.get(charger.transport, 0) + 1
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(transports.items()))
    return (
        f"{source}: valid: {len(config.chargers)} chargers ({kinds}),"
        f" {len(config.meters)} meters, {len(config.circuits)} circuits"
    )


async def run_gateway(config: GatewayConfig) -> None:
    """`evgw run`: open, run until cancelled, close."""
    gateway = await Gateway.open(config)
    logger.info(
        "gateway running",
        extra={"chargers": len(config.chargers), "upstream": config.upstream.url},
    )
    try:
        await gateway.run()
    finally:
        await gateway.close()


def _diagnostics_provider(gateway: Gateway) -> DiagnosticsProvider:
    """The diagnostics bundle OCPP GetDiagnostics/GetLog upload (`gateway.diagnostics`,
    imported when first asked for, so a station never waits on it at start)."""

    async def build() -> bytes:
        bundle = importlib.import_module("gateway.diagnostics.bundle")
        data: bytes = await bundle.build_diagnostics_bundle(gateway)
        return data

    return build
