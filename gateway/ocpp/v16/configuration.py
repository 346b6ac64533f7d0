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

from gateway.smart_charging.installed import MAX_PERIODS, MAX_PROFILES, MAX_STACK_LEVEL

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


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


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
    _Key("StopTransactionOnInvalidId", readonly=False, parse=_boolean),
    _Key("LocalAuthorizeOffline", readonly=False, parse=_boolean),
    _Key("LocalPreAuthorize", readonly=False, parse=_boolean),
    _Key("AllowOfflineTxForUnknownId", readonly=False, parse=_boolean),
    _Key("AuthorizationCacheEnabled", readonly=False, parse=_boolean),
    _Key("LocalAuthListEnabled", readonly=False, parse=_boolean),
    _Key("LocalAuthListMaxLength", readonly=True),
    _Key("SendLocalListMaxLength", readonly=True),
    _Key("MeterValuesSampledData", readonly=True),
    _Key("NumberOfConnectors", readonly=True),
    _Key("SupportedFeatureProfiles", readonly=True),
    _Key("AuthorizeRemoteTxRequests", readonly=True),
    _Key("GetConfigurationMaxKeys", readonly=True),
    # Security whitepaper: the basic-auth password is write-only (set by the station's
    # ChangeConfiguration handler, which persists it; never shown), the profile read-only
    # here (set by the gateway's configuration; no change over OCPP, so no downgrade).
    _Key("AuthorizationKey", readonly=False),
    _Key("SecurityProfile", readonly=True),
    # Smart Charging and Reservation profiles (gateway/ocpp/v16/smart_charging.py).
    _Key("ChargeProfileMaxStackLevel", readonly=True),
    _Key("ChargingScheduleAllowedChargingRateUnit", readonly=True),
    _Key("ChargingScheduleMaxPeriods", readonly=True),
    _Key("MaxChargingProfilesInstalled", readonly=True),
    _Key("ReserveConnectorZeroSupported", readonly=True),
)
WRITE_ONLY_KEYS = frozenset({"authorizationkey"})
"""Keys GetConfiguration lists without a value."""
_BY_NAME = {key.name.lower(): key for key in _KEYS}
"""Key names are case-insensitive in 1.6 (§9)."""

LOCAL_AUTH_LIST_MAX_LENGTH = 1000
"""Identifiers the Local Authorization List holds (LocalAuthListMaxLength). OCPP names no
size; this covers a fleet's or a company car park's cards with room to spare."""
SEND_LOCAL_LIST_MAX_LENGTH = 250
"""Identifiers per SendLocalList.req (SendLocalListMaxLength): a full list arrives in a few
messages, each well under SteVe's 8 MB frame cap and the codec's frame limit."""


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
        security_profile: int = 0,
    ) -> None:
        # 1.6 §3.7 example values: 3 attempts, 60 s apart (ocpp.md §6); libocpp uses 3 x 30 s.
        self._values: dict[str, Any] = {
            "HeartbeatInterval": heartbeat_interval_s,
            "MeterValueSampleInterval": meter_value_sample_interval_s,
            "ConnectionTimeOut": connection_timeout_s,
            "TransactionMessageAttempts": transaction_message_attempts,
            "TransactionMessageRetryInterval": transaction_message_retry_interval_s,
            # Offline authorization (1.6 §3.5, §9.1): valid list and cache entries start
            # offline; unknown identifiers do not; the central system decides online, and a
            # transaction it refuses afterwards is stopped.
            "StopTransactionOnInvalidId": True,
            "LocalAuthorizeOffline": True,
            "LocalPreAuthorize": False,
            "AllowOfflineTxForUnknownId": False,
            "AuthorizationCacheEnabled": True,
            "LocalAuthListEnabled": True,
            "LocalAuthListMaxLength": LOCAL_AUTH_LIST_MAX_LENGTH,
            "SendLocalListMaxLength": SEND_LOCAL_LIST_MAX_LENGTH,
            "MeterValuesSampledData": MEASURANDS,
            "NumberOfConnectors": 1,
            # GetDiagnostics is served although the rest of FirmwareManagement (UpdateFirmware)
            # cannot apply to a Modbus or MQTT charger, so that profile is not advertised.
            "SupportedFeatureProfiles": (
                "Core,LocalAuthListManagement,RemoteTrigger,SmartCharging,Reservation"
            ),
            # Remote starts go straight to a session (no Authorize first).
            "AuthorizeRemoteTxRequests": False,
            "GetConfigurationMaxKeys": len(_KEYS),
            "AuthorizationKey": None,
            "SecurityProfile": security_profile,
            "ChargeProfileMaxStackLevel": MAX_STACK_LEVEL,
            "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
            "ChargingScheduleMaxPeriods": MAX_PERIODS,
            "MaxChargingProfilesInstalled": MAX_PROFILES,
            # Connector 0 reserves the charger's one connector.
            "ReserveConnectorZeroSupported": True,
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

    @property
    def stop_transaction_on_invalid_id(self) -> bool:
        return bool(self._values["StopTransactionOnInvalidId"])

    @property
    def local_authorize_offline(self) -> bool:
        return bool(self._values["LocalAuthorizeOffline"])

    @property
    def local_pre_authorize(self) -> bool:
        return bool(self._values["LocalPreAuthorize"])

    @property
    def allow_offline_tx_for_unknown_id(self) -> bool:
        return bool(self._values["AllowOfflineTxForUnknownId"])

    @property
    def authorization_cache_enabled(self) -> bool:
        return bool(self._values["AuthorizationCacheEnabled"])

    @property
    def local_auth_list_enabled(self) -> bool:
        return bool(self._values["LocalAuthListEnabled"])

    @property
    def local_auth_list_max_length(self) -> int:
        return int(self._values["LocalAuthListMaxLength"])

    @property
    def send_local_list_max_length(self) -> int:
        return int(self._values["SendLocalListMaxLength"])

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
        if key.name.lower() in WRITE_ONLY_KEYS:
            return {"key": key.name, "readonly": key.readonly}
        value = self._values[key.name]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return {"key": key.name, "readonly": key.readonly, "value": text}
