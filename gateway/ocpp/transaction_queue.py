"""The durable transaction-message queue of one OCPP charge point (ocpp.md §6).

Rules (OCPP 1.6 §3.7, behaviour after libocpp's message queue):
- **What.** StartTransaction, StopTransaction and transaction MeterValues. Each is committed
  to SQLite (WAL, synchronous=FULL) *before* it is sent, and removed only when the central
  system answered with a CALLRESULT, or after its last attempt.
- **Order.** One message at a time, oldest first; a message being retried stays at the head,
  so everything queued after it waits (chronological delivery). Other messages (status,
  heartbeat, authorize) do not go through this queue and may overtake it.
- **Retries.** Only after a failure to process (CALLERROR, invalid CALLRESULT, no reply): at
  most `TransactionMessageAttempts` transmissions, waiting `TransactionMessageRetryInterval`
  x the transmissions so far before the next (3 x 60 s: 60 s, 120 s, then dropped). A lost
  connection is not a failure: the message is resent on the next one. Every send gets a fresh
  message id (the RPC core's rule).
- **Bound.** `DEFAULT_QUEUE_LIMIT` messages per charge point (libocpp's threshold). Past it,
  every other MeterValues is dropped (libocpp drops every other *update* message); a
  StartTransaction or StopTransaction is never dropped, so the queue may exceed the bound
  with them alone.
- **Pace.** See `ReplayPacer`.

OCPP 2.0.1 (`append_event`, `answered_event`): one action, TransactionEvent, under the same
rules with the keys MessageAttemptsTransactionEvent/MessageAttemptIntervalTransactionEvent.
Each event is stored under the 1.6 action of its role (`EVENT_QUEUE_ACTIONS`: Started as
StartTransaction, Updated as MeterValues, Ended as StopTransaction), so the store's
once-per-session rule and the overflow rule (Updated events may go, Started/Ended never) apply
unchanged; the station sends it as TransactionEvent. A 2.0.1 session's transactionId is
chosen by the station, so the store's transaction-id column of the session holds the seqNo of
its last answered event instead: with the seqNos still queued, it is where the numbering
continues after a restart (`next_seq_no`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from gateway.ocpp import JsonObject
from gateway.store import OutboxMessage, Store

logger = logging.getLogger(__name__)

TRANSACTION_ACTIONS: Final = ("StartTransaction", "MeterValues", "StopTransaction")
NEVER_DROPPED: Final = frozenset({"StartTransaction", "StopTransaction"})
TRANSACTION_EVENT: Final = "TransactionEvent"
EVENT_QUEUE_ACTIONS: Final[dict[str, str]] = {
    "Started": "StartTransaction",
    "Updated": "MeterValues",
    "Ended": "StopTransaction",
}
"""OCPP 2.0.1 eventType → the queue action it is stored as."""

DEFAULT_QUEUE_LIMIT: Final = 500
"""libocpp's overflow threshold per charge point (ocpp.md §6)."""

DEFAULT_REPLAY_INTERVAL_S: Final = 0.5
"""At most two queued transaction messages per second per upstream socket. An unthrottled
replay after an outage "looks like a DDoS" to the central system (SAP simulator #1204), and
SteVe answered StartTransaction in about 10 s during a reconnect storm (#1141), which made
impatient stations retry and worsen it. One CALL outstanding per socket already waits for each
answer; the pace adds a floor between sends, so a gateway with hundreds of chargers replaying
a full queue (500 messages: about four minutes each) spreads its load. Live traffic (a
MeterValues per sample interval) is far below the pace and is not delayed by it."""


def retry_wait_s(retry_interval_s: float, transmissions: int) -> float:
    """The wait before resending a message that failed `transmissions` times."""
    return retry_interval_s * transmissions


def overflow_victims(messages: Sequence[OutboxMessage], limit: int) -> list[OutboxMessage]:
    """What to drop when the queue holds more than `limit` messages: every other MeterValues
    (the second, fourth, ... oldest; a lone one when it is the only one), never a Start or
    Stop, and never the head (it may be awaiting its answer). Empty when within the bound or
    nothing may go."""
    if len(messages) <= limit:
        return []
    droppable = [m for m in list(messages)[1:] if m.action not in NEVER_DROPPED]
    if len(droppable) == 1:
        return droppable
    return droppable[1::2]


class ReplayPacer:
    """A floor between consecutive queued sends on one socket (sans-I/O: the caller passes
    the monotonic time)."""

    def __init__(self, interval_s: float = DEFAULT_REPLAY_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last_sent: float | None = None

    def delay(self, now: float) -> float:
        """Seconds to wait before the next send may go."""
        if self._last_sent is None:
            return 0.0
        return max(0.0, self._last_sent + self.interval_s - now)

    def sent(self, now: float) -> None:
        self._last_sent = now


class TransactionOutbox:
    """One charge point's queue: the store holds it, this keeps an in-memory mirror in order
    and wakes the sender. Load with `await load()` before use."""

    def __init__(self, store: Store, charge_point: str, *, limit: int = DEFAULT_QUEUE_LIMIT):
        if limit < 1:
            raise ValueError(f"queue limit must be at least 1, got {limit}")
        self.charge_point = charge_point
        self.limit = limit
        self._store = store
        self._messages: deque[OutboxMessage] = deque()
        self._changed = asyncio.Event()
        self._log = {"charge_point": charge_point}

    async def load(self) -> None:
        """Read what a previous run left queued."""
        self._messages = deque(await self._store.outbox(self.charge_point))
        if self._messages:
            logger.info(
                "transaction messages left from a previous run",
                extra={**self._log, "queued": len(self._messages)},
            )
        self._changed.set()

    def __len__(self) -> int:
        return len(self._messages)

    @property
    def messages(self) -> list[OutboxMessage]:
        return list(self._messages)

    async def append(
        self, session_id: str, action: str, payload: JsonObject, at: datetime
    ) -> OutboxMessage | None:
        """Queue a message durably. None when it was a Start/Stop already queued for the
        session (deduplicated across restarts)."""
        if action not in TRANSACTION_ACTIONS:
            raise ValueError(f"{action} is not a transaction message")
        message = await self._store.outbox_append(
            self.charge_point, session_id, action, payload, at.isoformat()
        )
        if message is None:
            logger.info(
                "%s already queued for this session; not queued again",
                action,
                extra={**self._log, "session_id": session_id},
            )
            return None
        self._messages.append(message)
        self._changed.set()
        await self._enforce_bound()
        return message

    async def append_event(
        self, session_id: str, payload: JsonObject, at: datetime
    ) -> OutboxMessage | None:
        """Queue an OCPP 2.0.1 TransactionEvent durably (its `eventType` decides how it is
        stored). None when it was a Started/Ended already queued for the session."""
        action = EVENT_QUEUE_ACTIONS.get(str(payload.get("eventType")))
        if action is None:
            raise ValueError(
                f"not a TransactionEvent payload: eventType {payload.get('eventType')}"
            )
        return await self.append(session_id, action, payload, at)

    async def answered_event(self, message: OutboxMessage) -> None:
        """An OCPP 2.0.1 TransactionEvent was answered: remove it and record its seqNo as the
        session's last answered one, in one transaction."""
        seq_no = int(message.payload["seqNo"])
        await self._store.outbox_answered(
            message.seq, session_id=message.session_id, transaction_id=seq_no
        )
        self._forget([message.seq])

    def next_seq_no(self, session_id: str, last_answered: int | None) -> int:
        """The seqNo a session's next TransactionEvent gets: one past the highest answered
        (`last_answered`, from the store) or still queued; 0 for a new transaction."""
        queued = [
            int(m.payload["seqNo"])
            for m in self._messages
            if m.session_id == session_id and "seqNo" in m.payload
        ]
        highest = max([*queued, -1 if last_answered is None else last_answered])
        return highest + 1

    async def head(self) -> OutboxMessage:
        """The oldest message, waiting until there is one."""
        while not self._messages:
            self._changed.clear()
            await self._changed.wait()
        return self._messages[0]

    async def answered(self, message: OutboxMessage, *, transaction_id: int | None = None) -> None:
        """The central system answered: remove it (recording a Start's transactionId in the
        same transaction)."""
        await self._store.outbox_answered(
            message.seq,
            session_id=message.session_id if transaction_id is not None else None,
            transaction_id=transaction_id,
        )
        self._forget([message.seq])

    async def failed(self, message: OutboxMessage) -> OutboxMessage:
        """Count a failed transmission; returns the message with its new count."""
        await self._store.outbox_failed(message.seq)
        updated = OutboxMessage(
            message.seq,
            message.session_id,
            message.action,
            message.payload,
            message.failures + 1,
            message.queued_at,
        )
        for index, queued in enumerate(self._messages):
            if queued.seq == message.seq:
                self._messages[index] = updated
        return updated

    async def drop(self, message: OutboxMessage, reason: str) -> None:
        """Give up on a message (logged as an error: data the central system will not get)."""
        await self._store.outbox_drop([message.seq])
        self._forget([message.seq])
        logger.error(
            "%s dropped: %s",
            message.action,
            reason,
            extra={
                **self._log,
                "session_id": message.session_id,
                "queued_at": message.queued_at,
                "failures": message.failures,
            },
        )

    async def _enforce_bound(self) -> None:
        victims = overflow_victims(self._messages, self.limit)
        if not victims:
            if len(self._messages) > self.limit:
                logger.warning(
                    "transaction queue over its bound with Start/Stop messages only",
                    extra={**self._log, "queued": len(self._messages), "limit": self.limit},
                )
            return
        await self._store.outbox_drop(m.seq for m in victims)
        self._forget([m.seq for m in victims])
        logger.warning(
            "transaction queue full: every other MeterValues dropped",
            extra={**self._log, "dropped": len(victims), "limit": self.limit},
        )

    def _forget(self, seqs: list[int]) -> None:
        gone = set(seqs)
        self._messages = deque(m for m in self._messages if m.seq not in gone)
