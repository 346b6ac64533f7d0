"""Modbus RTU: several chargers on one bus, over a real serial line (a pty pair joined like a
null-modem cable) and over TCP with RTU framing, against the simulator. No mocks."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import select
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.core.charger import ChargerUnavailable, CpState
from gateway.modbus import (
    ModbusCharger,
    ModbusConnectionError,
    ModbusLinkError,
    ModbusTimeout,
    SimulatedCharger,
    SimulatorServer,
)
from gateway.modbus.link import (
    HEIDELBERG_REQUEST_GAP_S,
    TIMEOUTS_BEFORE_RECONNECT,
    ModbusLink,
    ModbusRtuOverTcpLink,
    ModbusSerialLink,
    SerialSettings,
)
from gateway.modbus.profile import RegisterTable
from gateway.modbus.serial_pair import PTY_LINE, SerialPair

from .conftest import TEST_TIMEOUT_S, ManualClock

# A pty carries 8N1 only (see gateway.modbus.serial_pair); it ignores the baud rate.
LINE = PTY_LINE
FAST_RECOVERY = {
    "request_timeout_s": TEST_TIMEOUT_S,
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.2,
}
UNITS = {1: "generic", 2: "keba-p30", 3: "generic"}


def bus_chargers(clock: ManualClock) -> list[SimulatedCharger]:
    return [SimulatedCharger(name, unit_id=unit, clock=clock) for unit, name in UNITS.items()]


@dataclass
class RtuBus:
    transport: str
    server: SimulatorServer
    link: ModbusLink
    sims: dict[int, SimulatedCharger]

    def charger(self, unit_id: int) -> ModbusCharger:
        return ModbusCharger(self.link, unit_id, self.sims[unit_id].profile)


@pytest.fixture(params=["serial", "rtu-over-tcp"])
async def bus(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[RtuBus]:
    sims = bus_chargers(clock)
    server = SimulatorServer(sims)
    pair: SerialPair | None = None
    link: ModbusLink
    if request.param == "serial":
        pair = SerialPair(tmp_path / "gateway-tty", tmp_path / "bus-tty")
        await server.start_serial(pair.port_b, LINE)
        link = ModbusSerialLink(pair.port_a, LINE, **FAST_RECOVERY)
    else:
        port = await server.start_rtu_over_tcp()
        link = ModbusRtuOverTcpLink("127.0.0.1", port, **FAST_RECOVERY)
    yield RtuBus(str(request.param), server, link, {sim.unit_id: sim for sim in sims})
    await link.close()
    await server.stop()
    if pair is not None:
        pair.close()


async def test_chargers_on_one_rtu_bus_are_read_and_written(
    bus: RtuBus, clock: ManualClock
) -> None:
    one, two, three = (bus.charger(unit) for unit in UNITS)
    bus.sims[2].plug_in(max_current_a=16, phases=3)
    await one.set_current_limit(10)
    await two.set_current_limit(16)
    await three.set_current_limit(0)
    clock.advance(60)

    readings = [await charger.read() for charger in (one, two, three)]
    assert [r.cp_state for r in readings] == [CpState.A, CpState.C2, CpState.A]
    assert readings[1].current_a[0] == pytest.approx(16.0, abs=0.1)
    assert [r.setpoint_a for r in readings] == [10.0, 16.0, 0.0]
    assert (bus.sims[1].setpoint_a, bus.sims[2].setpoint_a) == (10.0, 16.0)
    # Each write reached its own unit only.
    assert [w.register for w in bus.sims[1].writes] == ["setpoint"]
    assert bus.sims[2].writes[0].register == "set_current"
    assert [(w.register, w.value) for w in bus.sims[3].writes] == [("setpoint", 0.0)]
    # The frames went over the RTU bus, addressed per unit.
    assert {r.unit_id for r in bus.server.requests} == set(UNITS)
    assert await two.read_values(["product_code"]) == {"product_code": 311000}


async def test_silent_unit_costs_one_timeout_and_spares_the_others(bus: RtuBus) -> None:
    one, two, three = (bus.charger(unit) for unit in UNITS)
    for charger in (one, two, three):
        await charger.read()
    vanished = bus.server.remove_charger(2)

    # More timeouts in a row than a TCP link tolerates before reconnecting.
    for _ in range(TIMEOUTS_BEFORE_RECONNECT + 1):
        with pytest.raises(ChargerUnavailable, match=r"unit 2.*no response within") as caught:
            await two.read()
        assert isinstance(caught.value.__cause__, ModbusTimeout)
    results = await asyncio.gather(one.read(), two.read(), three.read(), return_exceptions=True)
    assert isinstance(results[1], ChargerUnavailable)
    for result in (results[0], results[2]):
        assert not isinstance(result, BaseException)
        assert result.cp_state is CpState.A
    # The bus was never torn down for the silent unit.
    assert bus.link.connect_count == 1
    assert bus.link.connected

    bus.server.add_charger(vanished)
    assert (await two.read()).cp_state is CpState.A
    assert bus.link.connect_count == 1


async def test_whole_bus_quiet_reopens_a_socket_but_not_a_serial_port(bus: RtuBus) -> None:
    chargers = [bus.charger(unit) for unit in UNITS]
    for charger in chargers:
        await charger.read()
    removed = [bus.server.remove_charger(unit) for unit in UNITS]
    for charger in chargers:
        with pytest.raises(ChargerUnavailable, match="no response within"):
            await charger.read()
    for sim in removed:
        bus.server.add_charger(sim)
    for charger in chargers:
        assert (await charger.read()).cp_state is CpState.A
    # Every unit silent looks like a half-open socket to the converter: rebuild it. On a
    # local serial port reopening cures nothing on the wire, so the port stays open.
    assert bus.link.connect_count == (1 if bus.transport == "serial" else 2)


async def test_concurrent_callers_on_one_bus_never_interleave(bus: RtuBus) -> None:
    for sim in bus.sims.values():
        sim.response_delay_s = 0.01  # a slow answer invites a second request onto the wire
    chargers = [bus.charger(unit) for unit in UNITS]
    await asyncio.gather(
        *(charger.read() for charger in chargers),
        *(charger.set_current_limit(10) for charger in chargers),
        *(charger.read() for charger in chargers),
    )
    requests = bus.server.requests
    assert {r.unit_id for r in requests} == set(UNITS)
    assert len(requests) > 2 * len(UNITS)
    for before, after in itertools.pairwise(requests):
        assert before.answered_at is not None
        assert after.received_at >= before.answered_at, (before, after)


async def test_request_gap_is_kept_between_requests(bus: RtuBus) -> None:
    gap_s = HEIDELBERG_REQUEST_GAP_S
    bus.link.request_gap_s = gap_s
    bus.server.remove_charger(3)
    one, two, three = (bus.charger(unit) for unit in UNITS)
    results = await asyncio.gather(
        one.read_values(["layout_version"]),
        two.read_values(["product_code"]),
        three.read_values(["layout_version"]),  # silent: the gap counts from its timeout
        one.read_values(["layout_version"]),
        two.read_values(["product_code"]),
        return_exceptions=True,
    )
    assert isinstance(results[2], ChargerUnavailable)
    requests = bus.server.requests
    assert len(requests) == 5
    # Lower bounds only: a loaded machine may stretch a gap, never shorten it. The slack
    # covers clock rounding; without the gap requests follow each other within a few ms.
    slack_s = 0.005
    for before, after in itertools.pairwise(requests):
        if before.answered_at is None:
            assert after.received_at - before.received_at >= TEST_TIMEOUT_S + gap_s - slack_s
        else:
            assert after.received_at - before.answered_at >= gap_s - slack_s


async def test_vanished_serial_port_is_a_connection_error_and_recovers(
    clock: ManualClock, tmp_path: Path
) -> None:
    ends = (tmp_path / "gateway-tty", tmp_path / "bus-tty")
    sims = bus_chargers(clock)
    pair = SerialPair(*ends)
    server = SimulatorServer(sims)
    await server.start_serial(pair.port_b, LINE)
    link = ModbusSerialLink(pair.port_a, LINE, **FAST_RECOVERY)
    chargers = [ModbusCharger(link, sim.unit_id, sim.profile) for sim in sims]
    try:
        assert (await chargers[0].read()).cp_state is CpState.A

        await server.stop()
        pair.close()  # the adapter is unplugged
        for charger in chargers:
            with pytest.raises(ChargerUnavailable, match="gateway-tty unit") as caught:
                await charger.read()
            assert isinstance(caught.value.__cause__, ModbusConnectionError)
        assert not link.connected

        pair = SerialPair(*ends)  # plugged back in, under the same name
        server = SimulatorServer(sims)
        await server.start_serial(pair.port_b, LINE)
        await asyncio.sleep(FAST_RECOVERY["backoff_max_s"] * 1.5)  # past any back-off
        for charger in chargers:
            assert (await charger.read()).cp_state is CpState.A
        assert link.connect_count == 2
    finally:
        await link.close()
        await server.stop()
        pair.close()


async def test_missing_serial_device_is_a_connection_error(tmp_path: Path) -> None:
    link = ModbusSerialLink(str(tmp_path / "ttyUSB9"), LINE, **FAST_RECOVERY)
    charger = ModbusCharger(link, 1, SimulatedCharger("generic").profile)
    with pytest.raises(ChargerUnavailable, match=r"ttyUSB9 unit 1.*cannot connect") as first:
        await charger.read()
    assert isinstance(first.value.__cause__, ModbusConnectionError)
    with pytest.raises(ChargerUnavailable, match="next attempt in") as second:
        await charger.set_current_limit(16)
    assert isinstance(second.value.__cause__, ModbusConnectionError)
    await link.close()


async def test_line_settings_a_port_refuses_are_a_link_error(tmp_path: Path) -> None:
    # The Modbus default 8E1 on a pty: recent Linux kernels refuse the parity and pyserial
    # raises termios.error, which is no OSError; older kernels accept it and the request
    # times out instead (nobody listens). Either way only a ModbusLinkError may come out.
    with SerialPair(tmp_path / "tty") as pair:
        link = ModbusSerialLink(pair.port_a, SerialSettings(), **FAST_RECOVERY)
        try:
            with pytest.raises(ModbusLinkError, match=r"tty unit 1: reading input 0\.\.1"):
                await link.read_registers(1, RegisterTable.INPUT, 0, 2)
        finally:
            await link.close()


def test_serial_settings_describe_the_line() -> None:
    assert str(SerialSettings()) == "19200 8E1"  # the Modbus serial-line default
    assert str(LINE) == "115200 8N1"
    # t3.5: 3.5 characters of 11 bits at 9600 baud; a fixed 1.75 ms above 19200 baud.
    assert SerialSettings(baudrate=9600).frame_gap_s == pytest.approx(3.5 * 11 / 9600)
    assert LINE.frame_gap_s == pytest.approx(0.00175)
    with pytest.raises(ValueError, match="parity"):
        SerialSettings(parity="X")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baud"):
        SerialSettings(baudrate=0)


def read_within(fd: int, size: int, within_s: float = 2.0) -> bytes:
    data = b""
    while len(data) < size:
        ready, _, _ = select.select([fd], [], [], within_s)
        assert ready, f"only {data!r} arrived"
        data += os.read(fd, size - len(data))
    return data


def hung_up(fd: int) -> bool:
    """Whether the tty `fd` reports a hang-up (end of file or EIO) within 2 s."""
    ready, _, _ = select.select([fd], [], [], 2.0)
    if not ready:
        return False
    try:
        return os.read(fd, 1) == b""
    except OSError as exc:
        return exc.errno == errno.EIO


def test_serial_pair_is_a_null_modem_cable(tmp_path: Path) -> None:
    with SerialPair(tmp_path / "a", tmp_path / "b") as pair:
        assert os.path.realpath(pair.port_a) == pair.device_a
        a = os.open(pair.port_a, os.O_RDWR | os.O_NOCTTY)
        b = os.open(pair.port_b, os.O_RDWR | os.O_NOCTTY)
        try:
            # Binary frames pass unchanged both ways: no echo, no CR/LF translation.
            frame = bytes(range(256)) * 8
            os.write(a, frame)
            assert read_within(b, len(frame)) == frame
            os.write(b, b"\r\n\x00\xff")
            assert read_within(a, 4) == b"\r\n\x00\xff"
            pair.close()
            assert not (tmp_path / "a").exists()
            # A port still open after the pair is gone reports the hang-up.
            assert hung_up(a)
        finally:
            os.close(a)
            os.close(b)
        assert pair.closed


def test_serial_pair_refuses_to_replace_a_file(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("not a tty")
    with pytest.raises(FileExistsError):
        SerialPair(tmp_path / "a")
    assert (tmp_path / "a").read_text() == "not a tty"
