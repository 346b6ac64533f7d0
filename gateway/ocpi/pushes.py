"""Pushes to OCPI partners: one bounded queue and one sender task per partner, so a partner
that is slow or down never blocks the gateway or the other partners.

The spec has no store-and-forward (ocpi.md §2: a receiver recovers by pulling from the
sender's GET endpoints, which are always served); the retries here only ride out short
outages. A queue that is full drops its oldest entry, a push that keeps failing is dropped
after `MAX_ATTEMPTS` tries, and either is logged: the partner can pull what it missed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.ocpi.client import OcpiClient, OcpiClientError, OcpiReply
from gateway.ocpi.partners import InterfaceRole, PartnerRegistry, PartnerStatus

logger = logging.getLogger("gateway.ocpi.pushes")

QUEUE_CAPACITY: Final = 1000
"""Pushes waiting per partner; a site of a few dozen EVSEs produces far fewer between two
retries, so hitting this means the partner has been down for a long while."""

MAX_ATTEMPTS: Final = 6
"""Tries per push: with the back-off below, about a minute of outage is ridden out."""

BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 15.0, 30.0)
"""Wait before the n-th retry."""

DoneCallback = Callable[[OcpiReply], Awaitable[None]]


@dataclass(slots=True)
class _Push:
    method: str
    module: str | None
    """Sent to the partner's RECEIVER endpoint of this module + `target`; None: `target` is
    an absolute URL."""
    target: str
    body: Any
    key: str | None
    on_done: DoneCallback | None
    attempts: int = 0


@dataclass(slots=True)
class _PartnerQueue:
    items: collections.deque[_Push] = field(default_factory=collections.deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    dropped: int = 0


class Pushes:
    """The push queues. `push()`/`send()` never block and never raise; `close()` stops the
    sender tasks (what is still queued is dropped: partners pull)."""

    def __init__(
        self,
        partners: PartnerRegistry,
        client: OcpiClient,
        *,
        capacity: int = QUEUE_CAPACITY,
        backoff_s: tuple[float, ...] = BACKOFF_S,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._partners = partners
        self._client = client
        self._capacity = capacity
        self._backoff_s = backoff_s
        self._max_attempts = max_attempts
        self._queues: dict[str, _PartnerQueue] = {}
        self._closed = False
        self.delivered = 0
        """Pushes a partner accepted (for tests and metrics)."""

    def push(
        self,
        module: str,
        method: str,
        path: str,
        body: Any,
        *,
        key: str | None = None,
        on_done: DoneCallback | None = None,
    ) -> None:
        """Queue `method <partner's RECEIVER endpoint of module><path>` with `body` for every
        registered partner that has such an endpoint. `key` coalesces with a queued push of
        the same key (the newer replaces it in place); `on_done` is awaited with the reply of
        each partner that accepted it."""
        for partner in self._partners.registered():
            if partner.endpoint(module, InterfaceRole.RECEIVER) is not None:
                self._enqueue(partner.id, _Push(method, module, path, body, key, on_done))

    def send(
        self,
        partner_id: str,
        method: str,
        url: str,
        body: Any,
        *,
        key: str | None = None,
        on_done: DoneCallback | None = None,
    ) -> None:
        """Queue one request to one partner at an absolute URL (e.g. a CommandResult to the
        command's `response_url`)."""
        self._enqueue(partner_id, _Push(method, None, url, body, key, on_done))

    def pending(self, partner_id: str) -> int:
        queue = self._queues.get(partner_id)
        return len(queue.items) if queue is not None else 0

    async def close(self) -> None:
        self._closed = True
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals -------------------------------------------------------------------------

    def _enqueue(self, partner_id: str, item: _Push) -> None:
        if self._closed:
            return
        queue = self._queues.setdefault(partner_id, _PartnerQueue())
        if item.key is not None:
            for index, queued in enumerate(queue.items):
                # The head may be in flight; replacing it would lose nothing but could
                # reorder, so only waiting entries are coalesced.
                if index > 0 and queued.key == item.key:
                    queue.items[index] = item
                    return
        if len(queue.items) >= self._capacity:
            queue.items.popleft()
            queue.dropped += 1
            logger.warning(
                "OCPI push queue full, oldest push dropped (the partner can pull)",
                extra={"partner": partner_id, "dropped": queue.dropped},
            )
        queue.items.append(item)
        queue.wake.set()
        if queue.task is None or queue.task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                logger.error(
                    "OCPI push outside the event loop dropped", extra={"partner": partner_id}
                )
                queue.items.pop()
                return
            queue.task = loop.create_task(
                self._drain(partner_id, queue), name=f"ocpi-push-{partner_id}"
            )

    async def _drain(self, partner_id: str, queue: _PartnerQueue) -> None:
        while True:
            if not queue.items:
                queue.wake.clear()
                await queue.wake.wait()
                continue
            item = queue.items[0]
            try:
                delivered = await self._attempt(partner_id, item)
            except Exception:
                # A bug must not stop this partner's queue: drop the push (it can be pulled).
                logger.exception("OCPI push dropped after an error", extra={"partner": partner_id})
                delivered = True
            if delivered or item.attempts >= self._max_attempts:
                if queue.items and queue.items[0] is item:
                    queue.items.popleft()
                continue
            delay = self._backoff_s[min(item.attempts - 1, len(self._backoff_s) - 1)]
            await asyncio.sleep(delay)

    async def _attempt(self, partner_id: str, item: _Push) -> bool:
        """True when the item is finished with (delivered, or refused for good)."""
        item.attempts += 1
        partner = self._partners.get(partner_id)
        if partner is None or partner.status is not PartnerStatus.REGISTERED:
            return True
        url = item.target
        if item.module is not None:
            base = partner.endpoint(item.module, InterfaceRole.RECEIVER)
            if base is None:
                return True
            url = base.rstrip("/") + item.target
        extra = {"partner": partner_id, "method": item.method, "url": url, "attempt": item.attempts}
        try:
            reply = await self._client.call_partner(
                partner, item.method, url, body=item.body, routed=item.module is not None
            )
        except OcpiClientError as error:
            logger.warning("OCPI push failed: %s", error, extra=extra)
            return item.attempts >= self._max_attempts
        if reply.ok:
            self.delivered += 1
            if item.on_done is not None:
                try:
                    await item.on_done(reply)
                except Exception:
                    logger.exception("OCPI push callback failed", extra=extra)
            return True
        logger.warning(
            "OCPI push refused",
            extra={**extra, "http_status": reply.http_status, "status_code": reply.status_code},
        )
        return not reply.retryable
