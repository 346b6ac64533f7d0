"""`evgw simulate`: a configuration tried without hardware.

Every charger and meter of the configuration is replaced by a simulator speaking the same
protocol on the same kind of transport, on this machine: Modbus TCP and RTU-over-TCP chargers
by simulator servers on loopback ports, RTU buses by a pseudo-terminal pair per serial port
(the gateway opens one end, the simulated bus answers on the other), MQTT chargers by
simulated chargers of their style on a local Mosquitto broker, meters by simulated meters
that measure a building load plus the simulated chargers below their circuit. The real
gateway then runs on that configuration, rewritten only where it names hardware, with its
balancing, its store (in a temporary directory) and an upstream central system: a local one
that prints every message (the default) or the configured one (`--upstream`).

EVs plug in and out of every charger, staggered; the local central system starts each
session remotely when a charger reports Preparing, since simulated chargers without a reader
have no tag to present.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO, TypeVar

from gateway.balancing.topology import grid_phases
from gateway.config import (
    ChargerSection,
    GatewayConfig,
    GatewaySection,
    MeterSection,
    MqttSection,
    SerialSection,
)
from gateway.demo.central_system import DemoCentralSystem
from gateway.meters import SimulatedMeter
from gateway.modbus import SerialPair, SimulatedCharger, SimulatorServer
from gateway.modbus.serial_pair import PTY_LINE
from gateway.mqtt import MqttConfig
from gateway.mqtt.broker import LocalBroker
from gateway.mqtt.simulator import (
    EvgwSimulator,
    GoeSimulator,
    MqttChargerSimulator,
    OpenWbSimulator,
)
from gateway.simulation.charge_point import SimulatedChargePoint

PLUGGED_S = 40.0
UNPLUGGED_S = 10.0
"""Real seconds an EV stays, and a bay stays empty, at the default speed."""
BUILDING_LOAD_A = (8.0, 5.0, 5.0)
"""What simulated meters measure besides the chargers: a small, unbalanced building load."""

PhaseCurrents = tuple[float, float, float]
_Section = TypeVar("_Section", ChargerSection, MeterSection)


class SimulatedSite:
    """The simulators standing in for a configuration's hardware; `start()` gives the
    configuration that points the gateway at them, `stop()` tears them down."""

    def __init__(self, config: GatewayConfig, workdir: Path, *, speed: float = 1.0) -> None:
        self.config = config
        self.workdir = workdir
        self.speed = speed
        self.charge_points: dict[str, SimulatedChargePoint] = {}
        self._servers: dict[tuple[str, str], SimulatorServer] = {}
        self._rewritten_ports: dict[tuple[str, str], int] = {}
        self._pairs: dict[str, SerialPair] = {}
        self._broker: LocalBroker | None = None
        self._mqtt_simulators: list[MqttChargerSimulator] = []

    async def start(self) -> GatewayConfig:
        """Start every simulator; returns the configuration rewritten to reach them."""
        chargers = [self._simulate_charger(charger) for charger in self.config.chargers]
        meters = [self._simulate_meter(meter) for meter in self.config.meters]
        for (transport, bus), server in self._servers.items():
            if transport == "tcp":
                self._rewritten_ports[(transport, bus)] = await server.start("127.0.0.1", 0)
            elif transport == "rtu-over-tcp":
                self._rewritten_ports[(transport, bus)] = await server.start_rtu_over_tcp()
            else:
                await server.start_serial(self._pairs[bus].port_b, PTY_LINE)
        mqtt = self.config.mqtt
        if self._broker is not None:
            await self._broker.start()
            for simulator in self._mqtt_simulators:
                await simulator.start()
            mqtt = MqttSection(host="127.0.0.1", port=self._broker.port, client_id="evgw-sim")
        return dataclasses.replace(
            self.config,
            chargers=tuple(self._rewrite(charger) for charger in chargers),
            meters=tuple(self._rewrite_meter(meter) for meter in meters),
            mqtt=mqtt,
        )

    async def stop(self) -> None:
        for simulator in self._mqtt_simulators:
            with contextlib.suppress(Exception):
                await simulator.stop()
        if self._broker is not None:
            await self._broker.stop()
        for server in self._servers.values():
            await server.stop()
        for pair in self._pairs.values():
            pair.close()

    # ------------------------------------------------------------------ building

    def _bus(self, transport: str, host: str, port: int, serial: SerialSection | None) -> str:
        return serial.port if serial is not None else f"{host}:{port}"

    def _server(self, transport: str, bus: str) -> SimulatorServer:
        key = (transport, bus)
        if key not in self._servers:
            self._servers[key] = SimulatorServer([])
            if transport == "rtu":
                self._pairs[bus] = SerialPair()
        return self._servers[key]

    def _simulate_charger(self, charger: ChargerSection) -> ChargerSection:
        if charger.transport == "mqtt":
            self._simulate_mqtt_charger(charger)
            return charger
        simulated = SimulatedCharger(charger.profile, unit_id=charger.unit_id, speed=self.speed)
        bus = self._bus(charger.transport, charger.host, charger.port, charger.serial)
        self._server(charger.transport, bus).add_charger(simulated)
        self.charge_points[charger.id] = simulated
        return charger

    def _simulate_mqtt_charger(self, charger: ChargerSection) -> None:
        if self._broker is None:
            self._broker = LocalBroker.anonymous(self.workdir)
        config = MqttConfig(port=self._broker.port, client_id=f"sim-{charger.id}")
        charge_point = SimulatedChargePoint(name=charger.id, speed=self.speed)
        mqtt_id = charger.mqtt_id or charger.id
        simulator: MqttChargerSimulator
        if charger.mqtt_style == "go-e":
            simulator = GoeSimulator(config, mqtt_id, charge_point=charge_point)
        elif charger.mqtt_style == "openwb":
            simulator = OpenWbSimulator(config, mqtt_id, charge_point=charge_point)
        else:
            simulator = EvgwSimulator(config, mqtt_id, charge_point=charge_point)
        self._mqtt_simulators.append(simulator)
        self.charge_points[charger.id] = charge_point

    def _simulate_meter(self, meter: MeterSection) -> MeterSection:
        root = self.config.root_circuit
        below = _circuits_below(self.config, meter.circuit)
        sources = [
            _grid_currents(self.charge_points[charger.id], charger)
            for charger in self.config.chargers
            if (charger.circuit or root) in below and charger.id in self.charge_points
        ]
        simulated = SimulatedMeter(
            meter.profile, unit_id=meter.unit_id, base_load_a=BUILDING_LOAD_A, sources=sources
        )
        bus = self._bus(meter.transport, meter.host, meter.port, meter.serial)
        self._server(meter.transport, bus).add_charger(simulated)
        return meter

    def _rewrite(self, charger: ChargerSection) -> ChargerSection:
        if charger.transport == "mqtt":
            return charger
        bus = self._bus(charger.transport, charger.host, charger.port, charger.serial)
        return self._rewrite_endpoint(charger, charger.transport, bus)

    def _rewrite_meter(self, meter: MeterSection) -> MeterSection:
        bus = self._bus(meter.transport, meter.host, meter.port, meter.serial)
        return self._rewrite_endpoint(meter, meter.transport, bus)

    def _rewrite_endpoint(self, section: _Section, transport: str, bus: str) -> _Section:
        if transport == "rtu":
            pair = self._pairs[bus]
            line = SerialSection(pair.port_a, PTY_LINE.baudrate, "N", 1, 8)
            return dataclasses.replace(section, serial=line)
        port = self._rewritten_ports[(transport, bus)]
        return dataclasses.replace(section, host="127.0.0.1", port=port)


def _circuits_below(config: GatewayConfig, circuit_id: str) -> set[str]:
    """`circuit_id` and every circuit under it."""
    below = {circuit_id}
    grew = True
    while grew:
        grew = False
        for circuit in config.circuits:
            if circuit.parent in below and circuit.id not in below:
                below.add(circuit.id)
                grew = True
    return below


def _grid_currents(
    charge_point: SimulatedChargePoint, charger: ChargerSection
) -> Callable[[], PhaseCurrents]:
    """The charger's draw per grid phase, through its phase rotation."""

    def currents() -> PhaseCurrents:
        own = charge_point.phase_currents_a
        grid = [0.0, 0.0, 0.0]
        phases = grid_phases(charger.effective_rotation, charger.phases)
        for own_phase, grid_phase in enumerate(phases):
            grid[grid_phase] += own[own_phase]
        return (grid[0], grid[1], grid[2])

    return currents


async def run_simulation(
    config: GatewayConfig,
    *,
    out: TextIO,
    duration_s: float | None,
    speed: float = 1.0,
    use_configured_upstream: bool = False,
) -> None:
    """`evgw simulate`: run the gateway on `config` against simulators until cancelled or
    `duration_s` has passed."""
    # Imported here: gateway.runtime is imported by the command that imports this module.
    from gateway.runtime import Gateway

    with tempfile.TemporaryDirectory(prefix="evgw-simulate-") as directory:
        workdir = Path(directory)
        site = SimulatedSite(config, workdir, speed=speed)
        central_system: DemoCentralSystem | None = None
        async with contextlib.AsyncExitStack() as stack:
            simulated = await site.start()
            stack.push_async_callback(site.stop)
            upstream = config.upstream
            if not use_configured_upstream:
                central_system = DemoCentralSystem(out)
                await central_system.start()
                stack.push_async_callback(central_system.stop)
                _start_sessions_remotely(central_system)
                upstream = dataclasses.replace(upstream, url=central_system.url)
            simulated = dataclasses.replace(
                simulated,
                upstream=upstream,
                gateway=GatewaySection(store=workdir / "evgw.sqlite3", log_level="WARNING"),
                # The local API and the OCPI server on free ports: a simulation beside the
                # running gateway must neither take its ports nor fail on them.
                api=None if simulated.api is None else dataclasses.replace(simulated.api, port=0),
                ocpi=None
                if simulated.ocpi is None
                else dataclasses.replace(simulated.ocpi, port=0),
            )
            gateway = await Gateway.open(simulated)
            stack.push_async_callback(gateway.close)
            print(
                f"evgw simulate: {len(site.charge_points)} simulated chargers,"
                f" {len(config.meters)} meters, upstream {upstream.url} (Ctrl-C to stop)",
                file=out,
                flush=True,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration_s), asyncio.TaskGroup() as tasks:
                    tasks.create_task(gateway.run(), name="gateway")
                    for index, charge_point in enumerate(site.charge_points.values()):
                        tasks.create_task(_drive(charge_point, index), name=f"ev-{index}")
        print("evgw simulate: stopped", file=out, flush=True)


def _start_sessions_remotely(central_system: DemoCentralSystem) -> None:
    def on_status(identity: str, connector_id: int, status: str) -> None:
        if connector_id == 1 and status == "Preparing":
            central_system.send_call(
                identity, "RemoteStartTransaction", {"connectorId": 1, "idTag": "SIMULATED"}
            )

    central_system.on_status = on_status


async def _drive(charge_point: SimulatedChargePoint, index: int) -> None:
    """EVs plug in and out forever, staggered by charger."""
    await asyncio.sleep(1.0 + 0.5 * index)
    while True:
        charge_point.plug_in(energy_needed_wh=30_000.0, max_current_a=16.0)
        await asyncio.sleep(PLUGGED_S)
        charge_point.unplug()
        await asyncio.sleep(UNPLUGGED_S)
