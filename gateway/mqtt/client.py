"""An asyncio MQTT client over paho-mqtt.

Design: **paho's own network thread** (`loop_start()`), with every paho callback handed to the
event loop through `loop.call_soon_threadsafe`. The alternative, paho's socket callbacks with
`loop.add_reader/add_writer`, runs everything on the loop thread, but paho's connect is not
split into non-blocking steps: DNS resolution, the TCP connect and the TLS handshake block in
`connect()`/`reconnect()` until they succeed or time out. On a gateway whose broker is remote
(or whose DNS hangs), that would stall charger polling and the OCPP connections for seconds
at every reconnect attempt. In the thread those waits cost nothing, and paho's thread also
brings its tested reconnect loop with exponential back-off (`reconnect_delay_set`), keep-alive
pings and in-flight retries. paho guards its state with locks, so `publish()`/`subscribe()`
may be called from the loop thread; our own code (handlers, futures, the subscription table
seen by the loop) only ever runs on the loop thread. The price is one thread per broker
connection: share one `MqttClient` between all chargers on a broker.

Subscriptions are remembered and sent again after every reconnect (from the network thread,
right in `on_connect`, so no window exists in which the broker knows the client but not its
subscriptions). Clean sessions are used: the broker keeps nothing for us between connections,
and retained state topics bring the current state back after a resubscription.

Secrets: the password is held in `MqttConfig` with `repr=False` and is only ever passed to
paho; no log record of this module contains it (tests check the records).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)
_paho_log = logging.getLogger(f"{__name__}.paho")

__all__ = [
    "MessageHandler",
    "MqttAuthError",
    "MqttClient",
    "MqttConfig",
    "MqttConnectError",
    "MqttError",
    "MqttMessage",
    "MqttNotConnected",
    "MqttPublishError",
    "MqttTimeout",
    "MqttTls",
    "MqttWill",
]


class MqttError(Exception):
    """Base class of the MQTT client's errors."""


class MqttConnectError(MqttError):
    """The broker could not be reached or refused the connection."""


class MqttAuthError(MqttConnectError):
    """The broker refused the credentials (bad user name or password, or not authorised)."""


class MqttNotConnected(MqttError):
    """The operation needs a connection to the broker and there is none right now."""


class MqttTimeout(MqttError):
    """The broker did not acknowledge in time."""


class MqttPublishError(MqttError):
    """paho refused to queue a publication (e.g. its queue is full)."""


@dataclass(frozen=True, slots=True)
class MqttTls:
    """TLS to the broker. `ca_file` verifies the broker's certificate (None: the system's CA
    store); `cert_file`/`key_file` give a client certificate. `insecure` skips the check of
    the broker's host name against its certificate (the chain is still verified); leave it
    off outside tests."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure:
            context.check_hostname = False
        return context


@dataclass(frozen=True, slots=True)
class MqttWill:
    """The last will the broker publishes when the connection ends without DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where and how to connect. The password is never shown in `repr()` or logged."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    """Empty: the broker assigns one (only with a clean session, which we always use)."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: MqttTls | None = None
    keepalive_s: int = 30
    will: MqttWill | None = None
    reconnect_min_delay_s: int = 1
    reconnect_max_delay_s: int = 30
    ack_timeout_s: float = 5.0
    """Default wait for a PUBACK/PUBCOMP/SUBACK."""


@dataclass(frozen=True, slots=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool


MessageHandler = Callable[[MqttMessage], None]
"""Called on the event loop for every message matching a subscription. Exceptions are caught
and logged: a handler never breaks the client."""


@dataclass(slots=True)
class _Subscription:
    topic_filter: str
    qos: int
    handlers: list[MessageHandler] = field(default_factory=list)


def _reason_text(reason: ReasonCode | int) -> str:
    return str(reason) if isinstance(reason, ReasonCode) else f"code {reason}"


def _is_auth_failure(reason: ReasonCode) -> bool:
    # MQTT 5 names; paho maps a 3.1.1 CONNACK's return codes 4 and 5 to them.
    return reason.getName() in ("Bad user name or password", "Not authorized")


class MqttClient:
    """One connection to a broker; see the module docstring for the threading design.

    Use as `async with MqttClient(config) as client:` (connects, closes) or call `connect()`
    and `close()`. All public methods must be called from the event loop's thread.
    """

    def __init__(self, config: MqttConfig, *, name: str | None = None) -> None:
        self.config = config
        self.name = name or f"mqtt://{config.host}:{config.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._paho = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        self._paho.enable_logger(_paho_log)
        if config.username is not None:
            self._paho.username_pw_set(config.username, config.password)
        if config.tls is not None:
            self._paho.tls_set_context(config.tls.context())
        if config.will is not None:
            will = config.will
            self._paho.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        self._paho.reconnect_delay_set(config.reconnect_min_delay_s, config.reconnect_max_delay_s)
        self._paho.on_connect = self._on_connect_thread
        self._paho.on_disconnect = self._on_disconnect_thread
        self._paho.on_message = self._on_message_thread
        self._paho.on_publish = self._on_publish_thread
        self._paho.on_subscribe = self._on_subscribe_thread
        self._paho.on_connect_fail = self._on_connect_fail_thread
        # Guarded by _lock: read by the network thread to resubscribe.
        self._lock = threading.Lock()
        self._subscriptions: dict[str, _Subscription] = {}
        # Loop-thread state.
        self._connected = False
        self._ever_connected = False
        self._started = False
        self._closed = False
        self._first_connack: asyncio.Future[None] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._suback: dict[int, asyncio.Future[None]] = {}
        self._connection_listeners: list[Callable[[bool], None]] = []
        self.connect_count = 0
        """Successful CONNACKs so far (1 after the first connection; +1 per reconnect)."""
        self.messages_received = 0
        self.messages_published = 0
        """Messages dispatched to subscribers and published so far (for the metrics)."""
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"MqttClient({self.name}, client_id={self.config.client_id!r})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> MqttClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Start connecting in the background (and keep reconnecting); returns at once."""
        if self._started:
            return
        if self._closed:
            raise MqttError(f"{self.name}: client closed")
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._first_connack = self._loop.create_future()
        log.info(
            "mqtt connecting",
            extra={
                "broker": self.name,
                "client_id": self.config.client_id,
                "username": self.config.username,
                "tls": self.config.tls is not None,
            },
        )
        self._paho.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        self._paho.loop_start()

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Connect and wait for the broker's first CONNACK.

        Raises `MqttAuthError` when the broker refuses the credentials, `MqttConnectError`
        when it refuses otherwise or cannot be reached within `timeout_s`; the client is
        closed in each case. Once connected, a lost connection is retried in the background
        with back-off for as long as the client is open."""
        self.start()
        assert self._first_connack is not None
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._first_connack)
        except TimeoutError:
            await self.close()
            detail = f": {self.last_error}" if self.last_error else ""
            raise MqttConnectError(
                f"{self.name}: no connection within {timeout_s} s{detail}"
            ) from None
        except MqttConnectError:
            await self.close()
            raise

    async def close(self) -> None:
        """Disconnect cleanly (the broker discards the will) and stop the network thread."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._paho.disconnect()
            await asyncio.to_thread(self._paho.loop_stop)
        self._set_disconnected("closed")
        self._fail_pending(MqttNotConnected(f"{self.name}: client closed"))

    async def abort(self) -> None:
        """Drop the connection *without* DISCONNECT, as a crash or a pulled cable would: the
        broker publishes the will. For simulators and tests; the client is closed after."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            await asyncio.to_thread(self._paho.loop_stop)
            sock = self._paho.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._set_disconnected("aborted")
        self._fail_pending(MqttNotConnected(f"{self.name}: client aborted"))

    def add_connection_listener(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(True)` on every (re)connection and `listener(False)` on every loss,
        on the event loop."""
        self._connection_listeners.append(listener)

    # ------------------------------------------------------------------ operations

    async def subscribe(self, topic_filter: str, handler: MessageHandler, *, qos: int = 1) -> None:
        """Subscribe `handler` to `topic_filter`; kept across reconnects. Waits for the
        SUBACK when connected (else the subscription is sent on connection)."""
        _check_qos(qos)
        with self._lock:
            sub = self._subscriptions.get(topic_filter)
            if sub is None:
                sub = self._subscriptions[topic_filter] = _Subscription(topic_filter, qos)
            sub.qos = max(sub.qos, qos)
            sub.handlers.append(handler)
            qos = sub.qos
        if not self._connected:
            return
        rc, mid = self._paho.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            # Lost the connection meanwhile: on_connect will send it.
            return
        future = self._running_loop().create_future()
        self._suback[mid] = future
        try:
            async with asyncio.timeout(self.config.ack_timeout_s):
                await future
        except TimeoutError:
            self._suback.pop(mid, None)
            raise MqttTimeout(f"{self.name}: no SUBACK for {topic_filter!r}") from None

    async def unsubscribe(self, topic_filter: str, handler: MessageHandler | None = None) -> None:
        """Remove `handler` (or every handler) from `topic_filter`."""
        with self._lock:
            sub = self._subscriptions.get(topic_filter)
            if sub is None:
                return
            if handler is not None:
                sub.handlers = [h for h in sub.handlers if h is not handler]
            if handler is None or not sub.handlers:
                del self._subscriptions[topic_filter]
                gone = True
            else:
                gone = False
        if gone and self._connected:
            self._paho.unsubscribe(topic_filter)

    async def publish(
        self,
        topic: str,
        payload: bytes | str,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Publish; at QoS 1/2 wait for the broker's PUBACK/PUBCOMP (at most `timeout_s`,
        default `config.ack_timeout_s`). Raises `MqttNotConnected` at once when there is no
        connection (nothing is queued for later: a stale command is worse than none) and
        `MqttTimeout` when the acknowledgement does not come."""
        _check_qos(qos)
        if not self._connected:
            raise MqttNotConnected(f"{self.name}: not connected, cannot publish to {topic!r}")
        info = self._paho.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            raise MqttNotConnected(f"{self.name}: connection lost publishing to {topic!r}")
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise MqttPublishError(f"{self.name}: {topic!r}: {paho.error_string(info.rc)}")
        self.messages_published += 1
        if qos == 0:
            return
        # The ack is handed over with call_soon_threadsafe, so it cannot be processed before
        # this future is registered: we do not yield in between.
        future = self._running_loop().create_future()
        self._acks[info.mid] = future
        wait_s = self.config.ack_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(wait_s):
                await future
        except TimeoutError:
            raise MqttTimeout(
                f"{self.name}: no acknowledgement for {topic!r} within {wait_s} s"
            ) from None
        finally:
            self._acks.pop(info.mid, None)

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until connected (raises `MqttTimeout`)."""
        deadline = time.monotonic() + timeout_s
        while not self._connected:
            if time.monotonic() > deadline:
                raise MqttTimeout(f"{self.name}: not connected within {timeout_s} s")
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ network thread

    def _on_connect_thread(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        subs: list[tuple[str, int]] = []
        if not reason.is_failure:
            with self._lock:
                subs = [(s.topic_filter, s.qos) for s in self._subscriptions.values()]
            for topic_filter, qos in subs:
                client.subscribe(topic_filter, qos)
        self._to_loop(self._on_connect, reason, len(subs))

    def _on_disconnect_thread(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        self._to_loop(self._on_disconnect, reason)

    def _on_connect_fail_thread(self, client: paho.Client, userdata: Any) -> None:
        self._to_loop(self._on_connect_fail)

    def _on_message_thread(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        message = MqttMessage(msg.topic, bytes(msg.payload), int(msg.qos), bool(msg.retain))
        self._to_loop(self._dispatch, message)

    def _on_publish_thread(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self._to_loop(self._on_publish, mid, reason)

    def _on_subscribe_thread(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Any,
    ) -> None:
        self._to_loop(self._on_subscribe, mid, reasons)

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback, *args)

    # ------------------------------------------------------------------ event loop side

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise MqttNotConnected(f"{self.name}: not started")
        return self._loop

    def _on_connect(self, reason: ReasonCode, resubscribed: int) -> None:
        first = self._first_connack
        if reason.is_failure:
            text = _reason_text(reason)
            self.last_error = f"broker refused the connection: {text}"
            error: MqttConnectError
            if _is_auth_failure(reason):
                error = MqttAuthError(
                    f"{self.name}: broker refused the credentials of user "
                    f"{self.config.username!r}: {text}"
                )
            else:
                error = MqttConnectError(f"{self.name}: broker refused the connection: {text}")
            log.error(
                "mqtt connection refused",
                extra={"broker": self.name, "reason": text, "username": self.config.username},
            )
            if first is not None and not first.done():
                first.set_exception(error)
            return
        self._connected = True
        self._ever_connected = True
        self.connect_count += 1
        self.last_error = None
        log.info(
            "mqtt connected",
            extra={
                "broker": self.name,
                "reconnect": self.connect_count > 1,
                "resubscribed": resubscribed,
            },
        )
        if first is not None and not first.done():
            first.set_result(None)
        self._notify(True)

    def _on_disconnect(self, reason: ReasonCode) -> None:
        if self._closed:
            return
        text = _reason_text(reason)
        self.last_error = f"disconnected: {text}"
        if self._connected:
            log.warning("mqtt connection lost", extra={"broker": self.name, "reason": text})
        self._set_disconnected(text)
        self._fail_pending(MqttNotConnected(f"{self.name}: connection lost ({text})"))

    def _on_connect_fail(self) -> None:
        self.last_error = "cannot reach the broker"
        log.debug("mqtt connection attempt failed", extra={"broker": self.name})

    def _set_disconnected(self, reason: str) -> None:
        was = self._connected
        self._connected = False
        if was:
            self._notify(False)

    def _notify(self, connected: bool) -> None:
        for listener in list(self._connection_listeners):
            try:
                listener(connected)
            except Exception:
                log.exception("mqtt connection listener failed", extra={"broker": self.name})

    def _fail_pending(self, error: MqttError) -> None:
        for futures in (self._acks, self._suback):
            for future in futures.values():
                if not future.done():
                    future.set_exception(error)
            futures.clear()

    def _on_publish(self, mid: int, reason: ReasonCode) -> None:
        future = self._acks.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(MqttPublishError(f"{self.name}: broker: {reason}"))
        else:
            future.set_result(None)

    def _on_subscribe(self, mid: int, reasons: list[ReasonCode]) -> None:
        future = self._suback.pop(mid, None)
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error(
                "mqtt subscription refused",
                extra={"broker": self.name, "reasons": [str(r) for r in failed]},
            )
        if future is None or future.done():
            return
        if failed:
            future.set_exception(MqttError(f"{self.name}: subscription refused: {failed[0]}"))
        else:
            future.set_result(None)

    def _dispatch(self, message: MqttMessage) -> None:
        self.messages_received += 1
        with self._lock:
            handlers = [
                handler
                for sub in self._subscriptions.values()
                if paho.topic_matches_sub(sub.topic_filter, message.topic)
                for handler in sub.handlers
            ]
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception(
                    "mqtt message handler failed",
                    extra={"broker": self.name, "topic": message.topic},
                )


def _check_qos(qos: int) -> None:
    if qos not in (0, 1, 2):
        raise ValueError(f"QoS must be 0, 1 or 2, got {qos}")
