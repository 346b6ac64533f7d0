"""What a stopping gateway leaves behind at its chargers: each reachable charger at its
failsafe current.

A charger's failsafe current (`failsafe_current_a`, default 0) is what its watchdog falls back
to when the gateway stops writing; the configuration check makes sure that all of them together
overload no fuse (load-balancing.md §6). A clean stop (SIGTERM, Ctrl-C) puts every charger
there at once instead of leaving it at the last balanced setpoint until its watchdog fires,
or for ever when it has none: so the site is in the same safe state whether the gateway was
stopped or died, and a charger without a watchdog is not left at a setpoint that only the
running balancing made safe. 0 pauses the charger. A charger that offers no current at the
stop (idle, or its session paused) is left at 0, not started at its failsafe. Sessions stay
open (in the store too): the vehicle stays plugged in, and the next start resumes them and
raises the current again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from gateway.core.site import Site

logger = logging.getLogger(__name__)

FAILSAFE_WRITE_BUDGET_S: Final = 5.0
"""How long a stop waits for the failsafe writes, all chargers together (they run in parallel,
serialized per bus): a few Modbus round trips with their timeouts. Writes still running then
are cancelled, with as long again for that: twice this is well inside the CLI's shutdown
grace (`gateway.cli.SHUTDOWN_GRACE_S`, 15 s)."""


@dataclass(slots=True)
class FailsafeOutcome:
    """Which chargers a stop left at their failsafe current, and which it could not."""

    written: dict[str, float] = field(default_factory=dict)
    """Charger id → the current written (A; 0 = paused)."""
    unreachable: list[str] = field(default_factory=list)
    """Offline at the stop: not written (their watchdog, if any, does it)."""
    failed: dict[str, str] = field(default_factory=dict)
    """Charger id → why the write failed or did not finish within the budget."""


async def leave_chargers_at_failsafe(
    site: Site,
    failsafe_current_a: Mapping[str, float],
    *,
    budget_s: float = FAILSAFE_WRITE_BUDGET_S,
) -> FailsafeOutcome:
    """Write each online charger's failsafe current (0 pauses it) as its current limit, in
    parallel, within `budget_s`; a charger that offers no current now (idle, paused) gets 0.
    Call after the site's polling and the balancing have stopped, before the drivers' links
    close. Never raises for a charger's failure: it is logged and reported in the outcome."""
    outcome = FailsafeOutcome()
    writes: dict[str, asyncio.Task[None]] = {}
    amps_of: dict[str, float] = {}
    for charger_id in site.charger_ids:
        connector = site.connector(charger_id)
        reading = connector.reading
        if not connector.online or reading is None:
            outcome.unreachable.append(charger_id)
            continue
        # A charger offering current goes to its failsafe, as its watchdog would take it; a
        # paused or disabled one is confirmed at 0 rather than started at its failsafe.
        offering = reading.enabled and reading.setpoint_a > 0
        amps_of[charger_id] = failsafe_current_a.get(charger_id, 0.0) if offering else 0.0
        writes[charger_id] = asyncio.create_task(
            site.driver(charger_id).set_current_limit(amps_of[charger_id]),
            name=f"failsafe-{charger_id}",
        )
    if writes:
        # asyncio.wait, not a timeout around gather: a write that overruns is cancelled and
        # reported by itself, the others keep their result.
        _, pending = await asyncio.wait(writes.values(), timeout=budget_s)
        for task in pending:
            task.cancel()
        if pending:
            # Bounded too: a driver may swallow a cancellation (cpython#86296) and finish its
            # request first.
            await asyncio.wait(pending, timeout=budget_s)
        for charger_id, task in writes.items():
            if task in pending:
                outcome.failed[charger_id] = f"no answer within {budget_s:g} s"
            elif task.exception() is not None:
                outcome.failed[charger_id] = str(task.exception())
            else:
                outcome.written[charger_id] = amps_of[charger_id]
    for charger_id, reason in outcome.failed.items():
        logger.warning(
            "could not leave the charger at its failsafe current: %s",
            reason,
            extra={"charger_id": charger_id},
        )
    logger.info(
        "chargers left at their failsafe current",
        extra={
            "written": len(outcome.written),
            "unreachable": len(outcome.unreachable),
            "failed": len(outcome.failed),
        },
    )
    return outcome
