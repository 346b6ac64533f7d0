"""The poller: readings, offline and back online, and isolation between chargers."""

from __future__ import annotations

import asyncio

from gateway.core.charger import ChargerReading, ChargerUnavailable, CpState
from gateway.modbus import (
    ChargerOffline,
    ChargerOnline,
    ChargerPolled,
    ChargerPoller,
    ModbusCharger,
    ModbusTcpLink,
    PollEvent,
    SimulatedCharger,
)

from .conftest import TEST_TIMEOUT_S

POLL_INTERVAL_S = 0.05


async def next_event(queue: asyncio.Queue[PollEvent], kind: type, within_s: float = 3.0) -> object:
    """The next event of `kind`, skipping others; fails the test if none comes in time."""
    async with asyncio.timeout(within_s):
        while True:
            event = await queue.get()
            if isinstance(event, kind):
                return event


async def test_poller_marks_offline_and_back_online() -> None:
    sim = SimulatedCharger("generic")
    port = await sim.start()
    link = ModbusTcpLink(
        "127.0.0.1",
        port,
        request_timeout_s=TEST_TIMEOUT_S,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
    )
    queue: asyncio.Queue[PollEvent] = asyncio.Queue()
    poller = ChargerPoller(
        "cp-1", ModbusCharger(link, None, sim.profile), queue, interval_s=POLL_INTERVAL_S
    )
    poller.start()
    try:
        polled = await next_event(queue, ChargerPolled)
        assert isinstance(polled, ChargerPolled)
        assert polled.reading.cp_state is CpState.A
        assert poller.online is True

        await sim.stop()
        offline = await next_event(queue, ChargerOffline)
        assert isinstance(offline, ChargerOffline)
        assert offline.charger_id == "cp-1"
        assert "127.0.0.1" in offline.reason
        assert poller.online is False

        sim.plug_in()
        await sim.start(port=port)
        assert isinstance(await next_event(queue, ChargerOnline), ChargerOnline)
        back = await next_event(queue, ChargerPolled)
        assert isinstance(back, ChargerPolled)
        assert back.reading.cp_state is CpState.B1
        assert poller.online is True
    finally:
        await poller.stop()
        await link.close()
        await sim.stop()


class _Flaky:
    """A charger source that fails on demand, to test the offline threshold without sockets."""

    def __init__(self, reading: ChargerReading) -> None:
        self.reading = reading
        self.failing = False

    async def read(self) -> ChargerReading:
        if self.failing:
            raise ChargerUnavailable("unplugged")
        return self.reading


IDLE = ChargerReading(
    cp_state=CpState.A,
    enabled=True,
    current_a=(0.0, 0.0, 0.0),
    voltage_v=(230.0, 230.0, 230.0),
    power_w=0.0,
    energy_wh=0.0,
    setpoint_a=0.0,
)


async def test_offline_after_threshold_and_reported_once() -> None:
    events: list[PollEvent] = []
    source = _Flaky(IDLE)
    poller = ChargerPoller("cp-2", source, events.append, failures_before_offline=2)
    await poller.poll_once()
    source.failing = True
    await poller.poll_once()
    assert poller.online is True  # one failure is tolerated
    await poller.poll_once()
    await poller.poll_once()
    source.failing = False
    await poller.poll_once()
    kinds = [type(event).__name__ for event in events]
    assert kinds == ["ChargerPolled", "ChargerOffline", "ChargerOnline", "ChargerPolled"]


async def test_a_failing_sink_does_not_stop_polling() -> None:
    calls = 0

    async def broken_sink(event: PollEvent) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("consumer bug")

    poller = ChargerPoller("cp-3", _Flaky(IDLE), broken_sink, interval_s=0.01)
    poller.start()
    await asyncio.sleep(0.1)
    await poller.stop()
    assert calls >= 3


async def test_a_silent_charger_does_not_slow_another() -> None:
    slow = SimulatedCharger("generic")
    fast = SimulatedCharger("generic")
    slow_port, fast_port = await slow.start(), await fast.start()
    slow.response_delay_s = 10.0  # never answers within the timeout
    slow_link = ModbusTcpLink("127.0.0.1", slow_port, request_timeout_s=TEST_TIMEOUT_S)
    fast_link = ModbusTcpLink("127.0.0.1", fast_port, request_timeout_s=TEST_TIMEOUT_S)
    queue: asyncio.Queue[PollEvent] = asyncio.Queue()
    pollers = [
        ChargerPoller("slow", ModbusCharger(slow_link, None, slow.profile), queue, interval_s=0.05),
        ChargerPoller("fast", ModbusCharger(fast_link, None, fast.profile), queue, interval_s=0.05),
    ]
    for poller in pollers:
        poller.start()
    try:
        await asyncio.sleep(TEST_TIMEOUT_S * 1.5)
        fast_polls = 0
        while not queue.empty():
            event = queue.get_nowait()
            if isinstance(event, ChargerPolled) and event.charger_id == "fast":
                fast_polls += 1
        assert fast_polls >= 4
    finally:
        for poller in pollers:
            await poller.stop()
        await slow_link.close()
        await fast_link.close()
        await slow.stop()
        await fast.stop()
