"""A charger on an MQTT broker, driven by its payload style (`gateway.mqtt.styles`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.core.charger import (
    ChargerReading,
    ChargerUnavailable,
    OcppErrorCode,
    round_down_to_resolution,
)
from gateway.mqtt.client import MqttClient, MqttError, MqttMessage
from gateway.mqtt.styles import (
    Command,
    Commanded,
    MqttChargerStyle,
    Outgoing,
    PayloadError,
)

log = logging.getLogger(__name__)

__all__ = ["PILOT_MINIMUM_A", "MqttCharger"]

PILOT_MINIMUM_A = 6.0
"""The lowest current the control pilot can offer (chargers.md §1): never command 0-6 A."""

_PAYLOAD_EXCERPT = 80
_command_ids = itertools.count(1)


class MqttCharger:
    """One charger on `client`'s broker, described by `style`. Implements `ChargerDriver`.

    Call `await start()` once (subscribes; the client may still be connecting) and `close()`
    at the end. `read()` answers from the latest retained/live values and raises
    `ChargerUnavailable` when the broker connection is down, the charger is offline (its
    last will), its data is older than `stale_after_s`, or no complete state has arrived.

    Malformed payloads are counted in `malformed` (per reason) and logged with their topic;
    the last good values stay. Commands are serialised per charger; each waits for the
    broker's PUBACK and, where the style has a result topic, for the charger's result
    (`ChargerUnavailable` with the charger's reason when it is negative or does not come
    within `result_timeout_s`).
    """

    def __init__(
        self,
        client: MqttClient,
        style: MqttChargerStyle,
        *,
        name: str | None = None,
        stale_after_s: float = 30.0,
        result_timeout_s: float = 5.0,
        max_current_a: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if stale_after_s <= 0:
            raise ValueError("stale_after_s must be positive")
        self.client = client
        self.style = style
        self.name = name or f"{style.name}:{style.base_topic}"
        self.stale_after_s = stale_after_s
        self.result_timeout_s = result_timeout_s
        self.max_current_a = min(style.max_current_a, max_current_a or style.max_current_a)
        self._clock = clock
        self._fields: dict[str, Any] = {}
        self._last_update: float | None = None
        self._online: bool | None = None
        self._commanded = Commanded()
        self._last_rfid: str | None = None
        self._malformed: Counter[str] = Counter()
        self._pending: list[
            tuple[str, Callable[[bytes], tuple[bool, str] | None], asyncio.Future[tuple[bool, str]]]
        ] = []
        self._command_lock = asyncio.Lock()
        self._keepalive_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._started = False
        self.keepalives_sent = 0

    def __repr__(self) -> str:
        return f"MqttCharger({self.name})"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Subscribe to the style's topics (kept across reconnects by the client)."""
        if self._started:
            return
        self._started = True
        for topic_filter in self.style.subscriptions:
            await self.client.subscribe(topic_filter, self._on_message, qos=1)
        if self.style.keepalive_s is not None:
            self._keepalive_task = asyncio.create_task(
                self._keepalive(self.style.keepalive_s), name=f"mqtt-keepalive {self.name}"
            )

    async def close(self) -> None:
        tasks = [t for t in (self._keepalive_task, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for topic_filter in self.style.subscriptions:
            await self.client.unsubscribe(topic_filter, self._on_message)
        self._started = False

    # ------------------------------------------------------------------ observations

    @property
    def malformed(self) -> Mapping[str, int]:
        """Malformed payloads received so far, per reason (see `PayloadError`)."""
        return dict(self._malformed)

    @property
    def malformed_total(self) -> int:
        return sum(self._malformed.values())

    @property
    def online(self) -> bool | None:
        """The availability topic's last word (None: not heard yet or the style has none)."""
        return self._online

    @property
    def fields(self) -> Mapping[str, Any]:
        """The latest valid value of every field received (for diagnostics)."""
        return dict(self._fields)

    async def read(self) -> ChargerReading:
        """The charger's state from the latest values; see the class docstring."""
        if not self.client.connected:
            raise ChargerUnavailable(f"{self.name}: no connection to the MQTT broker")
        availability = self.style.availability
        if availability is not None:
            if self._online is False:
                raise ChargerUnavailable(f"{self.name}: offline ({availability.topic} = offline)")
            if self._online is None and availability.require_online:
                raise ChargerUnavailable(
                    f"{self.name}: not yet online ({availability.topic} not received)"
                )
        missing = sorted(self.style.required - self._fields.keys())
        if missing:
            raise ChargerUnavailable(
                f"{self.name}: no complete state yet (missing {', '.join(missing)})"
            )
        assert self._last_update is not None
        age = self._clock() - self._last_update
        if age > self.stale_after_s:
            raise ChargerUnavailable(
                f"{self.name}: stale data (last update {age:.1f} s ago, "
                f"timeout {self.stale_after_s} s)"
            )
        reading = self.style.build_reading(self._fields, self._commanded)
        # Report a presented tag once, on the reading where it first appears.
        tag = reading.rfid
        fresh = tag if tag and tag != self._last_rfid else None
        self._last_rfid = tag
        if fresh != tag:
            reading = dataclasses.replace(reading, rfid=fresh)
        if reading.ocpp_error_code is OcppErrorCode.NO_ERROR and (
            reading.error_code or reading.cp_state.faulted
        ):
            # The MQTT styles carry no OCPP error mapping (yet): a vendor code or a fault
            # state is reported upstream as OtherError, with the code as vendorErrorCode.
            reading = dataclasses.replace(reading, ocpp_error_code=OcppErrorCode.OTHER_ERROR)
        return reading

    # ------------------------------------------------------------------ commands

    async def set_current_limit(self, amps: float) -> None:
        """Allow at most `amps`, rounded down to the style's resolution and capped at the
        maximum. 0 pauses; 0 < amps < 6 A is refused with `ValueError` (chargers.md §1)."""
        if not math.isfinite(amps) or amps < 0:
            raise ValueError(f"{self.name}: current limit {amps} A is not a current")
        if 0 < amps < PILOT_MINIMUM_A:
            raise ValueError(
                f"{self.name}: {amps} A is below the {PILOT_MINIMUM_A} A minimum; "
                "command 0 to pause"
            )
        if amps > self.max_current_a:
            log.warning(
                "current limit capped",
                extra={"charger": self.name, "asked_a": amps, "max_a": self.max_current_a},
            )
            amps = self.max_current_a
        rounded = round_down_to_resolution(amps, self.style.resolution_a)
        commanded = self._commanded
        async with self._command_lock:
            if rounded == 0 and not self.style.zero_current_pauses:
                # The charger refuses < 6 A: pause by disabling, keep its setpoint.
                await self._send(Command(enabled=False))
                commanded.paused = True
            elif not self.style.has_enable:
                await self._send(Command(current_a=rounded if commanded.enabled else 0.0))
                commanded.setpoint_a = rounded
                commanded.paused = rounded == 0
            elif not self.style.zero_current_pauses:
                # Re-enable after a pause by disabling (as the Modbus driver re-arms KEBA).
                await self._send(Command(current_a=rounded, enabled=commanded.enabled))
                commanded.setpoint_a = rounded
                commanded.paused = False
            else:
                await self._send(Command(current_a=rounded))
                commanded.setpoint_a = rounded
                commanded.paused = rounded == 0
            commanded.commanded = True

    async def set_enabled(self, enabled: bool) -> None:
        """Enable or disable charging. A style without an enable topic pauses through the
        current (0 A) and restores the last setpoint on enable."""
        commanded = self._commanded
        async with self._command_lock:
            if not self.style.has_enable:
                amps = commanded.setpoint_a if enabled and not commanded.paused else 0.0
                await self._send(Command(current_a=amps))
            elif not self.style.zero_current_pauses:
                await self._send(Command(enabled=enabled and not commanded.paused))
            else:
                await self._send(Command(enabled=enabled))
            commanded.enabled = enabled
            commanded.commanded = True

    async def set_phases(self, phases: int) -> None:
        """Switch between 1 and 3 phases, where the style can (go-e `psm`, openWB
        `phases_to_use`, the evgw schema's `phases`)."""
        if phases not in (1, 3):
            raise ValueError(f"{self.name}: a charger switches 1 or 3 phases, not {phases}")
        if not self.style.supports_phases:
            raise NotImplementedError(f"{self.style.name} has no phase switching")
        async with self._command_lock:
            await self._send(Command(phases=phases))
            self._commanded.phases = phases

    async def _send_state(self) -> None:
        """Send the whole commanded state again (keep-alive, charger restart)."""
        commanded = self._commanded
        if not self.style.has_enable:
            command = Command(current_a=commanded.effective_current_a)
        elif not self.style.zero_current_pauses:
            command = Command(
                current_a=commanded.setpoint_a if commanded.setpoint_a >= PILOT_MINIMUM_A else None,
                enabled=commanded.enabled and not commanded.paused,
            )
        else:
            command = Command(
                current_a=0.0 if commanded.paused else commanded.setpoint_a,
                enabled=commanded.enabled,
            )
        async with self._command_lock:
            await self._send(command)

    async def _send(self, command: Command) -> None:
        command_id = f"{next(_command_ids)}-{time.monotonic_ns() % 10**9}"
        for out in self.style.encode(command, self._commanded, command_id):
            await self._publish(out)

    async def _publish(self, out: Outgoing) -> None:
        future: asyncio.Future[tuple[bool, str]] | None = None
        entry = None
        if out.result is not None:
            future = asyncio.get_running_loop().create_future()
            entry = (out.result.topic, out.result.check, future)
            self._pending.append(entry)
        try:
            try:
                await self.client.publish(
                    out.topic, out.payload, qos=self.style.command_qos, retain=out.retain
                )
            except MqttError as exc:
                raise ChargerUnavailable(f"{self.name}: {out.topic}: {exc}") from exc
            log.debug(
                "mqtt command",
                extra={"charger": self.name, "topic": out.topic, "payload": out.payload},
            )
            if future is None:
                return
            try:
                async with asyncio.timeout(self.result_timeout_s):
                    ok, reason = await future
            except TimeoutError:
                raise ChargerUnavailable(
                    f"{self.name}: no result for {out.topic} within {self.result_timeout_s} s "
                    "(are MQTT writes enabled on the charger?)"
                ) from None
            if not ok:
                raise ChargerUnavailable(f"{self.name}: {out.topic} refused: {reason}")
        finally:
            if entry is not None and entry in self._pending:
                self._pending.remove(entry)

    async def _keepalive(self, interval_s: float) -> None:
        """The write-side watchdog (chargers.md §6): republish the commanded state every
        `interval_s` (the charger's timeout / 2) once the gateway has commanded anything."""
        while True:
            await asyncio.sleep(interval_s)
            if not self._commanded.commanded or not self.client.connected:
                continue
            try:
                await self._send_state()
                self.keepalives_sent += 1
            except ChargerUnavailable as exc:
                log.warning("mqtt keep-alive failed: %s", exc, extra={"charger": self.name})

    # ------------------------------------------------------------------ incoming

    def _on_message(self, message: MqttMessage) -> None:
        topic = message.topic
        if self._pending and self._resolve_result(message):
            return
        availability = self.style.availability
        if availability is not None and topic == availability.topic:
            if not message.payload and not message.retain:
                return
            try:
                online = availability.decode(message.payload)
            except PayloadError as exc:
                self._count_malformed(message, exc)
                return
            self._set_online(online)
            return
        decoder = self.style.state_topics.get(topic)
        if decoder is None:
            prefix = self.style.liveness_prefix
            if (
                prefix is not None
                and topic.startswith(prefix)
                and topic.count("/") == prefix.count("/")
            ):
                self._last_update = self._clock()
            return
        try:
            if not message.payload:
                raise PayloadError("empty", "empty payload (retained value cleared?)")
            try:
                value = orjson.loads(message.payload)
            except orjson.JSONDecodeError:
                raise PayloadError("not_json", "payload is not JSON") from None
            fields = decoder(value)
        except PayloadError as exc:
            self._count_malformed(message, exc)
            return
        self._fields.update(fields)
        self._last_update = self._clock()

    def _resolve_result(self, message: MqttMessage) -> bool:
        for topic, check, future in list(self._pending):
            if topic != message.topic or future.done():
                continue
            outcome = check(message.payload)
            if outcome is not None:
                future.set_result(outcome)
                return True
        return False

    def _set_online(self, online: bool) -> None:
        was = self._online
        self._online = online
        if was is not online:
            log.info("charger %s", "online" if online else "offline", extra={"charger": self.name})
        if online and was is False and self.style.resend_on_online and self._commanded.commanded:
            task = asyncio.get_running_loop().create_task(self._resend_after_restart())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _resend_after_restart(self) -> None:
        try:
            await self._send_state()
        except ChargerUnavailable as exc:
            log.warning(
                "resending the commanded state failed: %s", exc, extra={"charger": self.name}
            )

    def _count_malformed(self, message: MqttMessage, exc: PayloadError) -> None:
        self._malformed[exc.reason] += 1
        log.warning(
            "%s: malformed payload on %s (%s): %s; payload %r",
            self.name,
            message.topic,
            exc.reason,
            exc.detail,
            message.payload[:_PAYLOAD_EXCERPT],
            extra={"charger": self.name, "topic": message.topic, "reason": exc.reason},
        )
