"""One core charger projected upstream as one OCPP 1.6J charge point.

The identity is the charger's configured id; the URL is the central system's base URL plus
"/" plus the percent-encoded identity; one WebSocket per charger (ocpp.md §1-2).

Behaviour (OCPP 1.6 ed. 2):
- **Registration.** BootNotification first after connecting (it jumps the outbound queue).
  Accepted: Heartbeat at the returned interval, current StatusNotifications for connector 0
  and 1, then everything else. Pending/Rejected: retry after the returned `interval`, and send
  nothing else meanwhile (CALLs from the central system are still answered). Once accepted it
  is not sent again on a reconnect (its content has not changed, ocpp.md §7).
- **Status.** A StatusNotification for every status change the core reports, with the time the
  change happened; connector 0 follows the charger's reachability.
- **Transactions.** Authorize for identifiers presented at the charger (this station is the
  charger's `Authorizer`); StartTransaction when the core starts a session, its transactionId
  kept in the session and the store; MeterValues every MeterValueSampleInterval during a
  session; StopTransaction when it ends. Transaction messages are retried
  TransactionMessageAttempts times, TransactionMessageRetryInterval times the attempt number
  apart (§3.7); a durable offline queue is a later issue.
- **From the central system.** RemoteStart/StopTransaction, Get/ChangeConfiguration. Every
  other 1.6 action is answered NotSupported, an unknown one NotImplemented (by the codec).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from gateway.core.charger import ChargerReading
from gateway.core.clock import Clock, SystemClock
from gateway.core.events import (
    ChargerConnectivityChanged,
    SessionEnded,
    SessionMeterSampled,
    SessionStarted,
    SiteEvent,
    StatusChanged,
)
from gateway.core.session import Session, StopReason
from gateway.core.site import CONNECTOR_ID, RemoteStartRefused, Site
from gateway.core.status import ConnectorStatus
from gateway.ocpp import Call, Codec, JsonObject
from gateway.ocpp.backoff import ReconnectBackoff
from gateway.ocpp.connection import CallErrorReply, OcppClientConnection
from gateway.ocpp.rpc import DEFAULT_CALL_TIMEOUT_S, CallFailed, ConnectionLost
from gateway.ocpp.v16.configuration import StationConfiguration

logger = logging.getLogger(__name__)

SUBPROTOCOL: Final = "ocpp1.6"

OUTBOUND_ACTIONS: Final = (
    "Authorize",
    "BootNotification",
    "Heartbeat",
    "MeterValues",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
)
INBOUND_ACTIONS: Final = (
    "ChangeConfiguration",
    "GetConfiguration",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
)

BOOT_RETRY_WITHOUT_INTERVAL_S: Final = 60.0
"""Retry wait when a Pending/Rejected BootNotification.conf gives interval 0, or the call
failed: the 1.6 default HeartbeatInterval order of magnitude, so a central system that is
struggling is not hammered."""

STATUS_16: Final[dict[ConnectorStatus, str]] = {
    ConnectorStatus.AVAILABLE: "Available",
    ConnectorStatus.PREPARING: "Preparing",
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
    ConnectorStatus.FINISHING: "Finishing",
    ConnectorStatus.UNAVAILABLE: "Unavailable",
    ConnectorStatus.FAULTED: "Faulted",
}

PHASES: Final = ("L1", "L2", "L3")


@functools.cache
def codec16() -> Codec:
    """The 1.6 codec of every station: the actions above are supported, every other 1.6
    action is NotSupported."""
    return Codec(SUBPROTOCOL, supported_actions=OUTBOUND_ACTIONS + INBOUND_ACTIONS)


@dataclass(frozen=True, slots=True)
class ChargePointIdentity:
    """What BootNotification says about the charge point (1.6 CiString limits apply and are
    checked by the codec: vendor/model 20, serial 25, firmware 50 characters)."""

    vendor: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


def station_url(base_url: str, identity: str) -> str:
    """The central system's base URL + "/" + the percent-encoded identity."""
    return base_url.rstrip("/") + "/" + quote(identity, safe="")


def ocpp_timestamp(at: datetime) -> str:
    """RFC 3339 UTC with milliseconds and a Z, the form central systems parse best."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sampled_values(reading: ChargerReading, phases: int, context: str) -> list[JsonObject]:
    """The SampledValue list for one reading: energy register (Wh), current per phase (A),
    active power (W)."""
    values: list[JsonObject] = [
        {
            "value": f"{reading.energy_wh:.0f}",
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        }
    ]
    for phase, current in zip(PHASES[:phases], reading.current_a, strict=False):
        values.append(
            {
                "value": f"{current:.1f}",
                "context": context,
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    values.append(
        {
            "value": f"{reading.power_w:.0f}",
            "context": context,
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        }
    )
    return values


class Station16:
    """The OCPP 1.6J charge point of one charger. `run()` until cancelled."""

    def __init__(
        self,
        site: Site,
        charger_id: str,
        *,
        base_url: str,
        identity: ChargePointIdentity,
        configuration: StationConfiguration,
        call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
        backoff: ReconnectBackoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.charger_id = charger_id
        self.identity = identity
        self.configuration = configuration
        self._site = site
        self._clock: Clock = clock or SystemClock()
        self._phases = site.spec(charger_id).phases
        self.connection = OcppClientConnection(
            station_url(base_url, charger_id),
            codec16(),
            self._on_call,
            identity=charger_id,
            call_timeout_s=call_timeout_s,
            backoff=backoff,
        )
        self._events = site.subscribe(charger_id)
        self._accepted = asyncio.Event()
        self._configuration_changed = asyncio.Event()
        self._statuses_reported_at: datetime | None = None
        self._last_reported: dict[int, str] = {}
        self._transaction_ids: dict[str, int] = {}
        """Session id → upstream transactionId, for sessions of this run."""
        self._last_sample_at: dict[str, float] = {}
        self._handlers: dict[str, Callable[[JsonObject], Awaitable[JsonObject]]] = {
            "RemoteStartTransaction": self._on_remote_start,
            "RemoteStopTransaction": self._on_remote_stop,
            "GetConfiguration": self._on_get_configuration,
            "ChangeConfiguration": self._on_change_configuration,
        }
        self._log = {"charger_id": charger_id}

    @property
    def accepted(self) -> bool:
        """Whether the central system has accepted the BootNotification."""
        return self._accepted.is_set()

    async def run(self) -> None:
        self._site.set_authorizer(self.charger_id, self)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.connection.run(), name=f"ocpp-{self.charger_id}")
                tasks.create_task(self._register_then_heartbeat(), name=f"boot-{self.charger_id}")
                tasks.create_task(self._forward_events(), name=f"events-{self.charger_id}")
        finally:
            self._site.set_authorizer(self.charger_id, None)
            self._site.unsubscribe(self._events)

    # --- Authorizer ------------------------------------------------------------------------

    async def authorize(self, charger_id: str, id_tag: str) -> bool:
        """Authorize.req for a presented identifier. Without an accepted, connected
        central system the answer is no (offline authorization is a later issue)."""
        if not self.accepted or not self.connection.connected:
            logger.warning("cannot authorize while offline", extra=self._log)
            return False
        try:
            result = await self.connection.call("Authorize", {"idTag": id_tag})
        except CallFailed as error:
            logger.warning("Authorize failed: %s", error, extra=self._log)
            return False
        return bool(result["idTagInfo"]["status"] == "Accepted")

    # --- registration and heartbeat ---------------------------------------------------------

    def _boot_payload(self) -> JsonObject:
        payload: JsonObject = {
            "chargePointVendor": self.identity.vendor,
            "chargePointModel": self.identity.model,
        }
        if self.identity.serial_number:
            payload["chargePointSerialNumber"] = self.identity.serial_number
        if self.identity.firmware_version:
            payload["firmwareVersion"] = self.identity.firmware_version
        return payload

    async def _register_then_heartbeat(self) -> None:
        while True:
            await self.connection.wait_connected()
            try:
                result = await self.connection.call(
                    "BootNotification", self._boot_payload(), urgent=True
                )
            except ConnectionLost:
                continue
            except CallFailed as error:
                logger.warning("BootNotification failed: %s", error, extra=self._log)
                await asyncio.sleep(BOOT_RETRY_WITHOUT_INTERVAL_S)
                continue
            status, interval = result["status"], int(result["interval"])
            logger.info("BootNotification %s", status, extra={**self._log, "interval_s": interval})
            if status == "Accepted":
                if interval > 0:
                    self.configuration.heartbeat_interval_s = interval
                break
            await asyncio.sleep(interval if interval > 0 else BOOT_RETRY_WITHOUT_INTERVAL_S)
        await self._report_current_statuses()
        self._accepted.set()
        await self._heartbeat_forever()

    async def _heartbeat_forever(self) -> None:
        while True:
            interval = self.configuration.heartbeat_interval_s
            self._configuration_changed.clear()
            timeout = interval if interval > 0 else None  # 0 turns heartbeats off
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._configuration_changed.wait()
                continue  # the interval changed: start a new wait
            if not self.connection.connected:
                continue  # nobody to tell; a heartbeat queued for later would be stale
            try:
                await self.connection.call("Heartbeat", {})
            except CallFailed as error:
                logger.warning("Heartbeat failed: %s", error, extra=self._log)

    async def _report_current_statuses(self) -> None:
        connector = self._site.connector(self.charger_id)
        self._statuses_reported_at = self._clock.now()
        if connector.status is None:
            return  # not polled yet: the first poll's events will report both connectors
        await self._send_status(0, "Available" if connector.online else "Unavailable")
        await self._send_status(CONNECTOR_ID, STATUS_16[connector.status])

    async def _send_status(
        self,
        connector_id: int,
        status: str,
        *,
        at: datetime | None = None,
        vendor_error_code: int = 0,
        error_code: str = "OtherError",
        info: str | None = None,
    ) -> None:
        if self._last_reported.get(connector_id) == status:
            return
        self._last_reported[connector_id] = status
        payload: JsonObject = {
            "connectorId": connector_id,
            "status": status,
            "errorCode": "NoError",
            "timestamp": ocpp_timestamp(at or self._clock.now()),
        }
        if status == "Faulted":
            payload["errorCode"] = error_code
            if vendor_error_code:
                payload["vendorErrorCode"] = str(vendor_error_code)
        if info:
            payload["info"] = info
        try:
            await self.connection.call("StatusNotification", payload)
        except CallFailed as error:
            logger.warning("StatusNotification failed: %s", error, extra=self._log)

    # --- core events ------------------------------------------------------------------------

    async def _forward_events(self) -> None:
        await self._accepted.wait()
        while True:
            event = await self._events.get()
            try:
                await self._forward(event)
            except Exception:
                # One bad event must not silence the charge point.
                logger.exception("could not forward %s", type(event).__name__, extra=self._log)

    async def _forward(self, event: SiteEvent) -> None:
        if isinstance(event, StatusChanged):
            reported_at = self._statuses_reported_at
            if reported_at is not None and event.at < reported_at:
                return  # superseded by the status reported after boot
            info = "charger unreachable" if event.status is ConnectorStatus.UNAVAILABLE else None
            await self._send_status(
                event.connector_id,
                STATUS_16[event.status],
                at=event.at,
                vendor_error_code=event.vendor_error_code,
                error_code=str(event.error_code),
                info=info,
            )
        elif isinstance(event, ChargerConnectivityChanged):
            await self._send_status(
                0,
                "Available" if event.online else "Unavailable",
                at=event.at,
                info=None if event.online else "charger unreachable",
            )
        elif isinstance(event, SessionStarted):
            await self._start_transaction(event.session)
        elif isinstance(event, SessionMeterSampled):
            await self._sample(event)
        elif isinstance(event, SessionEnded):
            await self._stop_transaction(event.session)

    async def _start_transaction(self, session: Session) -> None:
        result = await self._transaction_message(
            "StartTransaction",
            {
                "connectorId": session.connector_id,
                "idTag": session.id_tag,
                "meterStart": round(session.meter_start_wh),
                "timestamp": ocpp_timestamp(session.started_at),
            },
        )
        if result is None:
            return
        transaction_id = int(result["transactionId"])
        self._transaction_ids[session.id] = transaction_id
        self._last_sample_at[session.id] = self._clock.monotonic()
        await self._site.record_upstream_transaction_id(
            self.charger_id, session.id, str(transaction_id)
        )
        status = result["idTagInfo"]["status"]
        logger.info(
            "transaction started",
            extra={**self._log, "transaction_id": transaction_id, "id_tag_status": status},
        )
        if status != "Accepted":
            # StopTransactionOnInvalidId is fixed at true (read-only key).
            with contextlib.suppress(LookupError):
                await self._site.stop_session(
                    self.charger_id, session.connector_id, StopReason.DEAUTHORIZED
                )

    def _transaction_id(self, session: Session) -> int | None:
        known = self._transaction_ids.get(session.id)
        if known is not None:
            return known
        if session.upstream_transaction_id is not None:  # resumed from a previous run
            with contextlib.suppress(ValueError):
                return int(session.upstream_transaction_id)
        return None

    async def _sample(self, event: SessionMeterSampled) -> None:
        interval = self.configuration.meter_value_sample_interval_s
        transaction_id = self._transaction_id(event.session)
        if interval <= 0 or transaction_id is None:
            return
        now = self._clock.monotonic()
        last = self._last_sample_at.setdefault(event.session.id, now)
        if now - last < interval:
            return
        self._last_sample_at[event.session.id] = now
        await self._transaction_message(
            "MeterValues",
            {
                "connectorId": event.session.connector_id,
                "transactionId": transaction_id,
                "meterValue": [
                    {
                        "timestamp": ocpp_timestamp(event.at),
                        "sampledValue": sampled_values(
                            event.reading, self._phases, "Sample.Periodic"
                        ),
                    }
                ],
            },
        )

    async def _stop_transaction(self, session: Session) -> None:
        self._last_sample_at.pop(session.id, None)
        transaction_id = self._transaction_id(session)
        self._transaction_ids.pop(session.id, None)
        if transaction_id is None:
            logger.error(
                "session ended without a transactionId; StopTransaction not sent"
                " (the durable offline queue is not implemented yet)",
                extra={**self._log, "session_id": session.id},
            )
            return
        assert session.stopped_at is not None
        assert session.meter_stop_wh is not None
        payload: JsonObject = {
            "transactionId": transaction_id,
            "idTag": session.id_tag,
            "meterStop": round(session.meter_stop_wh),
            "timestamp": ocpp_timestamp(session.stopped_at),
            "reason": (session.stop_reason or StopReason.OTHER).value,
        }
        await self._transaction_message("StopTransaction", payload)

    async def _transaction_message(self, action: str, payload: JsonObject) -> JsonObject | None:
        """Send a transaction-related message, retrying per 1.6 §3.7 with a fresh message id
        each time; None when every attempt failed."""
        failures = 0
        while True:
            try:
                return await self.connection.call(action, payload)
            except ConnectionLost:
                continue  # not a failure to process: resend on the next connection
            except CallFailed as error:
                failures += 1
                attempts = self.configuration.transaction_message_attempts
                if failures >= attempts:
                    logger.error(
                        "%s given up after %d attempts: %s",
                        action,
                        failures,
                        error,
                        extra=self._log,
                    )
                    return None
                wait = self.configuration.transaction_message_retry_interval_s * failures
                logger.warning(
                    "%s failed (%s); retrying in %d s", action, error, wait, extra=self._log
                )
                await asyncio.sleep(wait)

    # --- calls from the central system ----------------------------------------------------

    async def _on_call(self, call: Call) -> JsonObject:
        handler = self._handlers.get(call.action)
        if handler is None:
            raise CallErrorReply("NotSupported", f"{call.action} is not supported")
        logger.info("← %s", call.action, extra=self._log)
        return await handler(call.payload)

    async def _on_remote_start(self, payload: JsonObject) -> JsonObject:
        connector_id = int(payload.get("connectorId", CONNECTOR_ID))
        if "chargingProfile" in payload:
            logger.warning(
                "RemoteStartTransaction charging profile ignored (smart charging not supported)",
                extra=self._log,
            )
        try:
            await self._site.remote_start(self.charger_id, connector_id, str(payload["idTag"]))
        except (RemoteStartRefused, LookupError) as refusal:
            logger.info("RemoteStartTransaction rejected: %s", refusal, extra=self._log)
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    async def _on_remote_stop(self, payload: JsonObject) -> JsonObject:
        wanted = int(payload["transactionId"])
        session = self._site.connector(self.charger_id).session
        if session is None or self._transaction_id(session) != wanted:
            return {"status": "Rejected"}
        try:
            await self._site.stop_session(self.charger_id, session.connector_id, StopReason.REMOTE)
        except LookupError:
            return {"status": "Rejected"}
        return {"status": "Accepted"}

    async def _on_get_configuration(self, payload: JsonObject) -> JsonObject:
        known, unknown = self.configuration.get(payload.get("key"))
        answer: JsonObject = {"configurationKey": known}
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    async def _on_change_configuration(self, payload: JsonObject) -> JsonObject:
        key, value = str(payload["key"]), str(payload["value"])
        outcome = self.configuration.change(key, value)
        if outcome.value == "Accepted":
            self._apply_configuration(key)
        return {"status": outcome.value}

    def _apply_configuration(self, key: str) -> None:
        lowered = key.lower()
        if lowered == "connectiontimeout":
            self._site.set_connection_timeout(
                self.charger_id, self.configuration.connection_timeout_s
            )
        self._configuration_changed.set()
