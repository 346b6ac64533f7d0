"""A poll loop stops even when a library swallows its cancellation (Python 3.11's
`asyncio.wait_for`, which pymodbus uses, does so when the answer lands in the same tick:
cpython#86296). The race itself is timing-dependent (benches/bench_poll.py saw 15 of 500
pollers hit it in one run), so this driver swallows the cancellation on purpose, exactly as
`wait_for` would: it returns a normal reading instead of raising."""

from __future__ import annotations

import asyncio

from gateway.core.charger import ChargerReading, CpState
from gateway.modbus.poller import ChargerPoller, PollEvent

READING = ChargerReading(
    cp_state=CpState.A,
    enabled=True,
    current_a=(0.0, 0.0, 0.0),
    voltage_v=(230.0, 230.0, 230.0),
    power_w=0.0,
    energy_wh=0.0,
    setpoint_a=0.0,
)


class SwallowingCharger:
    def __init__(self) -> None:
        self.swallowed = 0

    async def read(self) -> ChargerReading:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.swallowed += 1
            return READING
        return READING


async def test_a_poller_stops_although_its_read_swallowed_the_cancellation() -> None:
    events: list[PollEvent] = []
    charger = SwallowingCharger()
    poller = ChargerPoller("CP-1", charger, events.append, interval_s=0.01)
    poller.start()
    await asyncio.sleep(0.05)  # the poller now waits inside read()
    stopping = asyncio.create_task(poller.stop())
    # A bound against a hang, not a timing assertion.
    done, _ = await asyncio.wait({stopping}, timeout=5)
    assert done, "the poller went on polling after its cancellation was swallowed"
    assert charger.swallowed == 1
    assert len(events) == 1  # the swallowed read still reported, then the loop stopped
