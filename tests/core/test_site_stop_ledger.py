"""A stop records in the ledger what the site saw before it: the session write under way is
finished, not cut short, and sessions that started and ended in the last polls before the stop
(effects not yet dispatched) are written too, so the next start resumes from what happened."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from gateway.core.session import Session
from gateway.core.site import ChargerSpec, Site
from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger
from gateway.store import Store

SAFETY_DEADLINE_S = 30.0
"""A bound against a hung test, not a timing assertion."""


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(SAFETY_DEADLINE_S):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)  # the connector's state has no event to wait on


class GatedStore(Store):
    """The real store, whose session-start writes wait until the test opens the gate: a
    ledger slower than the chargers, so effects queue up behind it."""

    gate: asyncio.Event

    async def record_session_started(self, session: Session) -> None:
        await self.gate.wait()
        await super().record_session_started(session)


async def test_a_stop_records_the_session_effects_still_queued(tmp_path: Path) -> None:
    store = await GatedStore.open(tmp_path / "evgw.sqlite3")
    assert isinstance(store, GatedStore)
    store.gate = asyncio.Event()
    simulator = SimulatedCharger("generic")
    port = await simulator.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=5.0)
    site = Site(ledger=store)
    site.add_charger(
        ChargerSpec("CP-1", max_current_a=16.0, poll_interval_s=0.05),
        ModbusCharger(link, None, simulator.profile, name="CP-1"),
    )
    running = asyncio.create_task(site.run())
    try:
        connector = site.connector("CP-1")
        await _until(lambda: connector.reading is not None)
        # A session starts (its ledger write waits at the gate) and ends (its effect queues
        # behind), both before the stop.
        simulator.plug_in(rfid="TAG-1", max_current_a=16.0)
        await _until(lambda: connector.session is not None)
        assert connector.session is not None
        session_id = connector.session.id
        simulator.unplug()
        await _until(lambda: connector.session is None)
        assert await store.sessions("CP-1") == []  # nothing written yet: the gate is shut

        running.cancel()
        await asyncio.sleep(0)  # the cancellation reaches the site's tasks ...
        store.gate.set()  # ... while the start's write is still under way
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(SAFETY_DEADLINE_S):
                await running

        (recorded,) = await store.sessions("CP-1")
        assert recorded.id == session_id
        assert recorded.stopped_at is not None  # the end, queued at the stop, is there too
        assert await store.open_sessions() == []
    finally:
        if not running.done():
            running.cancel()
        await link.close()
        await simulator.stop()
        await store.close()
