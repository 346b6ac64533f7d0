"""Fixtures of the API tests: a real gateway with its local API on a loopback port, three
simulated Modbus TCP chargers under a two-level fuse tree, and a central system built on the
`ocpp` package."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from gateway.api.load_history import LoadHistory
from gateway.config import (
    ApiSection,
    ApiUser,
    BalancingSection,
    ChargerSection,
    CircuitSection,
    GatewayConfig,
    GatewaySection,
    MeterSection,
    UpstreamSection,
)
from gateway.meters.simulator import SimulatedMeter
from gateway.modbus import SimulatedCharger
from gateway.modbus.simulator_server import SimulatorServer
from gateway.runtime import Gateway
from tests.ocpp.central_system_ocpp import OcppPackageCsms

SPEED = 10.0
"""Simulated seconds per real second for the EVs."""
GRID_A = 40.0
BOARD_A = 32.0
BUILDING_L1_A = 5.0
"""The depot's own load on L1, which only the grid meter sees."""
METER_UNIT = 5
WITHIN_S = 30.0
"""Generous: the machine is shared; a condition is polled, never waited for blindly."""


@dataclass
class LiveSite:
    gateway: Gateway
    simulators: list[SimulatedCharger]
    meter: SimulatedMeter
    csms: OcppPackageCsms
    url: str
    admin_token: str
    read_token: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}


def site_config(
    ports: list[int],
    csms_url: str,
    store: Path,
    admin: str,
    read: str,
    meter_port: int | None = None,
) -> GatewayConfig:
    meters: tuple[MeterSection, ...] = ()
    if meter_port is not None:
        meters = (
            MeterSection(
                id="grid-meter",
                circuit="grid",
                host="127.0.0.1",
                port=meter_port,
                unit_id=METER_UNIT,
                poll_interval_s=0.5,
                stale_after_s=10.0,
            ),
        )
    return GatewayConfig(
        gateway=GatewaySection(store=store),
        upstream=UpstreamSection(url=csms_url, heartbeat_interval_s=30),
        chargers=tuple(
            ChargerSection(
                id=f"CP-{index + 1}",
                host="127.0.0.1",
                port=port,
                poll_interval_s=0.2,
                max_current_a=16.0,
                circuit="board-A" if index < 2 else "grid",
            )
            for index, port in enumerate(ports)
        ),
        circuits=(
            CircuitSection(id="grid", max_current_a=(GRID_A, GRID_A, GRID_A)),
            CircuitSection(id="board-A", parent="grid", max_current_a=(BOARD_A,) * 3),
        ),
        balancing=BalancingSection(interval_s=1.0, ramp_a_per_s=50.0),
        meters=meters,
        api=ApiSection(
            users=(
                ApiUser(name="operator", role="admin", token=admin),
                ApiUser(name="viewer", role="read", token=read),
            ),
            host="127.0.0.1",
            port=0,
        ),
    )


async def until(condition: Callable[[], bool], within_s: float = WITHIN_S) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def live_site(tmp_path: Path) -> AsyncIterator[LiveSite]:
    csms = OcppPackageCsms()
    await csms.start()
    simulators = [SimulatedCharger("generic", speed=SPEED) for _ in range(3)]
    ports = [await simulator.start("127.0.0.1", 0) for simulator in simulators]

    def ours() -> tuple[float, float, float]:
        currents = [simulator.phase_currents_a for simulator in simulators]
        return (
            sum(c[0] for c in currents),
            sum(c[1] for c in currents),
            sum(c[2] for c in currents),
        )

    meter = SimulatedMeter(
        "eastron-sdm630", unit_id=METER_UNIT, base_load_a=(BUILDING_L1_A, 0.0, 0.0), sources=[ours]
    )
    meter_server = SimulatorServer([meter])
    meter_port = await meter_server.start()
    admin, read = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    gateway = await Gateway.open(
        site_config(ports, csms.url, tmp_path / "api.sqlite3", admin, read, meter_port)
    )
    assert gateway.api is not None
    # Samples every half second, so the chart has a history within the test.
    gateway.api.history = LoadHistory(sample_interval_s=0.5, hours=1.0)
    task = asyncio.create_task(gateway.run())
    try:
        await until(lambda: gateway.api is not None and gateway.api.port is not None)
        await until(lambda: all(station.online for station in gateway.stations.values()))
        yield LiveSite(gateway, simulators, meter, csms, gateway.api.url, admin, read)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await gateway.close()
        for simulator in simulators:
            await simulator.stop()
        await meter_server.stop()
        await csms.stop()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[LiveSite]:
    async with live_site(tmp_path) as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WITHIN_S)) as session:
        yield session
