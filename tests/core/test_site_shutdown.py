"""A site stops when cancelled, even when the cancellation lands in the same event-loop tick
as a wake-up of a charger's poll task (the window in which Python 3.11's `asyncio.wait_for`
swallowed the cancellation, cpython#86296, and `evgw` hung on SIGINT)."""

from __future__ import annotations

import asyncio

from gateway.core.site import ChargerSpec, Site
from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger

ROUNDS = 30


async def test_cancelling_the_site_while_a_poll_is_woken_stops_it() -> None:
    simulator = SimulatedCharger("generic")
    port = await simulator.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=0.5)
    try:
        for round_ in range(ROUNDS):
            site = Site()
            site.add_charger(
                ChargerSpec("CP-1", max_current_a=16.0, poll_interval_s=0.05),
                ModbusCharger(link, None, simulator.profile, name="CP-1"),
            )
            running = asyncio.create_task(site.run())
            async with asyncio.timeout(10):
                while True:
                    if site.connector("CP-1").reading is not None:
                        break
                    await asyncio.sleep(0.01)
            # Land at different points of the poll cycle, round after round.
            await asyncio.sleep(0.003 * (round_ % 17))
            # Wake the poll task and cancel the site in one tick.
            await site.remote_start("CP-1", 1, f"TAG-{round_}")
            running.cancel()
            done, _ = await asyncio.wait({running}, timeout=5.0)
            assert done, f"round {round_}: the site ignored its cancellation"
            assert running.cancelled()
    finally:
        await link.close()
        await simulator.stop()
