"""The link pool: one link per bus, shared by the chargers on it; separate buses in parallel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.charger import CpState
from gateway.modbus import (
    ModbusCharger,
    ModbusConnectionError,
    ModbusLinkPool,
    ModbusTcpLink,
    SimulatedCharger,
    SimulatorServer,
)
from gateway.modbus.link import (
    EASTRON_SDM_REQUEST_GAP_S,
    HEIDELBERG_REQUEST_GAP_S,
    ModbusRtuOverTcpLink,
    ModbusSerialLink,
    SerialSettings,
)
from gateway.modbus.profile import RegisterTable
from gateway.modbus.serial_pair import PTY_LINE, SerialPair

from .conftest import TEST_TIMEOUT_S, ManualClock

LINE = PTY_LINE  # 115200 8N1: what a pty carries


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[SerialPair]:
    with SerialPair(tmp_path / "gateway-tty", tmp_path / "bus-tty") as serial_pair:
        yield serial_pair


def test_socket_links_are_shared_per_host_port_and_framing() -> None:
    pool = ModbusLinkPool(request_timeout_s=0.7)
    tcp = pool.link("192.0.2.10", 502)
    assert isinstance(tcp, ModbusTcpLink)
    assert pool.link("192.0.2.10") is tcp  # 502 is the default port
    assert len(pool.links) == 1
    rtu = pool.rtu_over_tcp_link("192.0.2.10", 502)  # same socket address, other framing
    assert isinstance(rtu, ModbusRtuOverTcpLink)
    assert len(pool.links) == 2
    assert pool.rtu_over_tcp_link("192.0.2.10", 502) is rtu
    assert pool.link("192.0.2.10", 1502) is not tcp
    assert pool.link("192.0.2.11", 502) is not tcp
    assert {link.request_timeout_s for link in pool.links} == {0.7}
    assert len(pool.links) == 4
    assert rtu.endpoint == "rtu+tcp://192.0.2.10:502"


def test_serial_links_are_shared_per_device(pair: SerialPair, tmp_path: Path) -> None:
    pool = ModbusLinkPool()
    link = pool.serial_link(pair.port_a, LINE)
    assert isinstance(link, ModbusSerialLink)
    assert pool.serial_link(pair.port_a, LINE) is link
    # A symlink (as /dev/serial/by-id/...) and the device it names are the same port.
    assert pool.serial_link(pair.device_a, LINE) is link
    assert pool.serial_link(pair.port_b, LINE) is not link
    assert pool.serial_link(str(tmp_path / "ttyUSB7")).settings == SerialSettings()


def test_same_serial_port_with_other_settings_is_a_value_error(pair: SerialPair) -> None:
    pool = ModbusLinkPool()
    pool.serial_link(pair.port_a, LINE)
    with pytest.raises(ValueError, match=r"115200 8N1.*9600 8E1") as caught:
        pool.serial_link(pair.port_a, SerialSettings(baudrate=9600))
    assert pair.port_a in str(caught.value)
    with pytest.raises(ValueError, match=r"115200 8N1.*115200 8N2"):
        pool.serial_link(pair.device_a, SerialSettings(baudrate=115200, parity="N", stopbits=2))


def test_a_bus_keeps_the_largest_request_gap_asked_for(pair: SerialPair) -> None:
    pool = ModbusLinkPool()
    meter_bus = pool.serial_link(pair.port_a, LINE, request_gap_s=EASTRON_SDM_REQUEST_GAP_S)
    assert pool.serial_link(pair.port_a, LINE).request_gap_s == EASTRON_SDM_REQUEST_GAP_S
    pool.serial_link(pair.port_a, LINE, request_gap_s=0.25)
    assert meter_bus.request_gap_s == 0.25
    tcp = pool.link("192.0.2.10", request_gap_s=HEIDELBERG_REQUEST_GAP_S)
    assert pool.link("192.0.2.10").request_gap_s == HEIDELBERG_REQUEST_GAP_S
    assert tcp.request_gap_s == HEIDELBERG_REQUEST_GAP_S


async def test_two_chargers_on_one_serial_port_share_the_open_port(
    pair: SerialPair, clock: ManualClock
) -> None:
    sims = [SimulatedCharger("generic", unit_id=unit, clock=clock) for unit in (1, 2)]
    server = SimulatorServer(sims)
    await server.start_serial(pair.port_b, LINE)
    pool = ModbusLinkPool(request_timeout_s=TEST_TIMEOUT_S)
    try:
        # The port is opened exclusively: a second link on it could not open it at all.
        chargers = [
            ModbusCharger(pool.serial_link(pair.port_a, LINE), sim.unit_id, sim.profile)
            for sim in sims
        ]
        sims[1].plug_in()
        await chargers[1].set_current_limit(16)
        clock.advance(30)
        readings = await asyncio.gather(*(charger.read() for charger in chargers))
        assert [r.cp_state for r in readings] == [CpState.A, CpState.C2]
        assert len(pool.links) == 1
    finally:
        await pool.close()
        await server.stop()


async def test_separate_buses_run_in_parallel(clock: ManualClock, tmp_path: Path) -> None:
    pool = ModbusLinkPool(request_timeout_s=2.0)
    servers: list[SimulatorServer] = []
    pairs = [SerialPair(tmp_path / f"gw-{n}", tmp_path / f"bus-{n}") for n in range(2)]
    try:
        for serial_pair in pairs:
            sim = SimulatedCharger("generic", unit_id=1, clock=clock)
            sim.response_delay_s = 0.2
            server = SimulatorServer([sim])
            await server.start_serial(serial_pair.port_b, LINE)
            servers.append(server)
        links = [pool.serial_link(serial_pair.port_a, LINE) for serial_pair in pairs]
        assert links[0] is not links[1]
        await asyncio.gather(*(link.read_registers(1, RegisterTable.INPUT, 0, 1) for link in links))
        first, second = (server.requests[0] for server in servers)
        assert first.answered_at is not None
        assert second.answered_at is not None
        # Each bus took its request while the other bus's request was still being answered.
        assert second.received_at < first.answered_at
        assert first.received_at < second.answered_at
    finally:
        await pool.close()
        for server in servers:
            await server.stop()
        for serial_pair in pairs:
            serial_pair.close()


async def test_closing_the_pool_closes_every_link(pair: SerialPair) -> None:
    pool = ModbusLinkPool()
    links = [pool.link("192.0.2.10"), pool.serial_link(pair.port_a, LINE)]
    await pool.close()
    assert pool.links == []
    closed = r"unit 1: reading input 0\.\.0: link closed"
    for link in links:
        with pytest.raises(ModbusConnectionError, match=closed):
            await link.read_registers(1, RegisterTable.INPUT, 0, 1)
