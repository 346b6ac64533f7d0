"""The OCPP 1.6 configuration keys a projected charge point implements (1.6 §9.1).

Keys the gateway acts on are read-write; keys that describe fixed behaviour are read-only so
a central system can discover it. Unknown keys are answered as the spec says: `unknownKey` in
GetConfiguration, `NotSupported` in ChangeConfiguration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MEASURANDS = "Energy.Active.Import.Register,Current.Import,Power.Active.Import"
"""What our MeterValues carry (MeterValuesSampledData)."""


class ChangeOutcome(StrEnum):
    """ChangeConfiguration.conf status values."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


def _seconds(value: str) -> int:
    seconds = int(value.strip())
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _positive(value: str) -> int:
    number = int(value.strip())
    if number < 1:
        raise ValueError("must be at least 1")
    return number


@dataclass(frozen=True, slots=True)
class _Key:
    name: str
    readonly: bool
    parse: Callable[[str], Any] | None = None


_KEYS: tuple[_Key, ...] = (
    _Key("HeartbeatInterval", readonly=False, parse=_seconds),
    _Key("MeterValueSampleInterval", readonly=False, parse=_seconds),
    _Key("ConnectionTimeOut", readonly=False, parse=_positive),
    _Key("TransactionMessageAttempts", readonly=False, parse=_positive),
    _Key("TransactionMessageRetryInterval", readonly=False, parse=_seconds),
    _Key("MeterValuesSampledData", readonly=True),
    _Key("NumberOfConnectors", readonly=True),
    _Key("SupportedFeatureProfiles", readonly=True),
    _Key("AuthorizeRemoteTxRequests", readonly=True),
    _Key("StopTransactionOnInvalidId", readonly=True),
    _Key("LocalAuthorizeOffline", readonly=True),
    _Key("LocalPreAuthorize", readonly=True),
    _Key("GetConfigurationMaxKeys", readonly=True),
)
_BY_NAME = {key.name.lower(): key for key in _KEYS}
"""Key names are case-insensitive in 1.6 (§9)."""


class StationConfiguration:
    """The configuration of one projected charge point. Values are typed; `get`/`change`
    speak the wire's strings."""

    def __init__(
        self,
        *,
        heartbeat_interval_s: int,
        meter_value_sample_interval_s: int,
        connection_timeout_s: int,
        transaction_message_attempts: int = 3,
        transaction_message_retry_interval_s: int = 60,
        on_change: Callable[[str, Any], None] | None = None,
    ) -> None:
        # 1.6 §3.7 example values: 3 attempts, 60 s apart (ocpp.md §6).
        self._values: dict[str, Any] = {
            "HeartbeatInterval": heartbeat_interval_s,
            "MeterValueSampleInterval": meter_value_sample_interval_s,
            "ConnectionTimeOut": connection_timeout_s,
            "TransactionMessageAttempts": transaction_message_attempts,
            "TransactionMessageRetryInterval": transaction_message_retry_interval_s,
            "MeterValuesSampledData": MEASURANDS,
            "NumberOfConnectors": 1,
            "SupportedFeatureProfiles": "Core",
            # Remote starts go straight to a session (no Authorize first).
            "AuthorizeRemoteTxRequests": False,
            "StopTransactionOnInvalidId": True,
            # No local list or cache yet: everything is authorized online.
            "LocalAuthorizeOffline": False,
            "LocalPreAuthorize": False,
            "GetConfigurationMaxKeys": len(_KEYS),
        }
        self._on_change = on_change

    @property
    def heartbeat_interval_s(self) -> int:
        return int(self._values["HeartbeatInterval"])

    @heartbeat_interval_s.setter
    def heartbeat_interval_s(self, seconds: int) -> None:
        self._values["HeartbeatInterval"] = seconds

    @property
    def meter_value_sample_interval_s(self) -> int:
        return int(self._values["MeterValueSampleInterval"])

    @property
    def connection_timeout_s(self) -> int:
        return int(self._values["ConnectionTimeOut"])

    @property
    def transaction_message_attempts(self) -> int:
        return int(self._values["TransactionMessageAttempts"])

    @property
    def transaction_message_retry_interval_s(self) -> int:
        return int(self._values["TransactionMessageRetryInterval"])

    def get(self, keys: Iterable[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """GetConfiguration: (configurationKey entries, unknownKey names). None or an empty
        list asks for every key."""
        wanted = list(keys or [])
        if not wanted:
            return [self._entry(key) for key in _KEYS], []
        known, unknown = [], []
        for name in wanted:
            key = _BY_NAME.get(name.lower())
            if key is None:
                unknown.append(name)
            else:
                known.append(self._entry(key))
        return known, unknown

    def change(self, name: str, value: str) -> ChangeOutcome:
        """ChangeConfiguration: apply a new value if the key is known, writable and the value
        valid."""
        key = _BY_NAME.get(name.lower())
        if key is None:
            return ChangeOutcome.NOT_SUPPORTED
        if key.readonly or key.parse is None:
            return ChangeOutcome.REJECTED
        try:
            parsed = key.parse(value)
        except ValueError:
            return ChangeOutcome.REJECTED
        self._values[key.name] = parsed
        if self._on_change is not None:
            self._on_change(key.name, parsed)
        return ChangeOutcome.ACCEPTED

    def _entry(self, key: _Key) -> dict[str, Any]:
        value = self._values[key.name]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return {"key": key.name, "readonly": key.readonly, "value": text}
