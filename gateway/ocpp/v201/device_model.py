"""The device model of a projected OCPP 2.0.1 charging station: the gateway's own settings as
components and variables (2.0.1 Part 2 §B, appendix "Referenced Components and Variables"),
read and written by GetVariables/SetVariables. Free of I/O.

Only the `Actual` attribute exists; asking for another (Target, MinSet, MaxSet) is answered
NotSupportedAttributeType. Every component is station-wide: a component with an instance or
an EVSE is UnknownComponent. A read-only variable is Rejected on SetVariables, as is a value
that does not parse or is out of range (2.0.1 B05.FR.xx: "Rejected" for invalid values).

The OCPPCommCtrlr retry variables are `MessageAttempts` / `MessageAttemptInterval` with the
instance `TransactionEvent`; the flat spellings `MessageAttemptsTransactionEvent` /
`MessageAttemptIntervalTransactionEvent` (how ocpp.md and some CSMSs name them) and
`MessageTimeout` without its `Default` instance are accepted as aliases, and answered with
the component and variable as the request named them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from gateway.ocpp import JsonObject

MEASURANDS: Final = "Energy.Active.Import.Register,Current.Import,Power.Active.Import"
"""What the TransactionEvent meter values carry (SampledDataCtrlr.TxUpdatedMeasurands)."""


class AttributeStatus(StrEnum):
    """GetVariableStatusEnumType and SetVariableStatusEnumType (the values used here)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"


VariableKey = tuple[str, str, str | None]
"""(component name, variable name, variable instance)."""


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        number = int(text.strip())
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


@dataclass(frozen=True, slots=True)
class _Variable:
    key: VariableKey
    readonly: bool
    parse: Callable[[str], Any] | None = None
    write_only: bool = False
    """Never read back (GetVariables: Rejected; reports: no value)."""


HEARTBEAT_INTERVAL: Final[VariableKey] = ("OCPPCommCtrlr", "HeartbeatInterval", None)
MESSAGE_ATTEMPTS: Final[VariableKey] = ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")
MESSAGE_ATTEMPT_INTERVAL: Final[VariableKey] = (
    "OCPPCommCtrlr",
    "MessageAttemptInterval",
    "TransactionEvent",
)
MESSAGE_TIMEOUT: Final[VariableKey] = ("OCPPCommCtrlr", "MessageTimeout", "Default")
OFFLINE_THRESHOLD: Final[VariableKey] = ("OCPPCommCtrlr", "OfflineThreshold", None)
LOCAL_AUTHORIZE_OFFLINE: Final[VariableKey] = ("AuthCtrlr", "LocalAuthorizeOffline", None)
OFFLINE_TX_FOR_UNKNOWN_ID: Final[VariableKey] = ("AuthCtrlr", "OfflineTxForUnknownIdEnabled", None)
LOCAL_PRE_AUTHORIZE: Final[VariableKey] = ("AuthCtrlr", "LocalPreAuthorize", None)
AUTHORIZE_REMOTE_START: Final[VariableKey] = ("AuthCtrlr", "AuthorizeRemoteStart", None)
AUTH_CACHE_ENABLED: Final[VariableKey] = ("AuthCacheCtrlr", "Enabled", None)
LOCAL_AUTH_LIST_ENABLED: Final[VariableKey] = ("LocalAuthListCtrlr", "Enabled", None)
TX_UPDATED_INTERVAL: Final[VariableKey] = ("SampledDataCtrlr", "TxUpdatedInterval", None)
TX_UPDATED_MEASURANDS: Final[VariableKey] = ("SampledDataCtrlr", "TxUpdatedMeasurands", None)
EV_CONNECTION_TIMEOUT: Final[VariableKey] = ("TxCtrlr", "EVConnectionTimeOut", None)
STOP_TX_ON_INVALID_ID: Final[VariableKey] = ("TxCtrlr", "StopTxOnInvalidId", None)
TX_START_POINT: Final[VariableKey] = ("TxCtrlr", "TxStartPoint", None)
TX_STOP_POINT: Final[VariableKey] = ("TxCtrlr", "TxStopPoint", None)
SECURITY_PROFILE: Final[VariableKey] = ("SecurityCtrlr", "SecurityProfile", None)
BASIC_AUTH_PASSWORD: Final[VariableKey] = ("SecurityCtrlr", "BasicAuthPassword", None)

_VARIABLES: Final[tuple[_Variable, ...]] = (
    _Variable(HEARTBEAT_INTERVAL, readonly=False, parse=_integer(0)),
    _Variable(MESSAGE_ATTEMPTS, readonly=False, parse=_integer(1)),
    _Variable(MESSAGE_ATTEMPT_INTERVAL, readonly=False, parse=_integer(0)),
    # The call timeout is fixed when the station's connection is built.
    _Variable(MESSAGE_TIMEOUT, readonly=True),
    _Variable(OFFLINE_THRESHOLD, readonly=False, parse=_integer(0)),
    _Variable(LOCAL_AUTHORIZE_OFFLINE, readonly=False, parse=_boolean),
    _Variable(OFFLINE_TX_FOR_UNKNOWN_ID, readonly=False, parse=_boolean),
    _Variable(LOCAL_PRE_AUTHORIZE, readonly=False, parse=_boolean),
    # Remote starts go straight to a session (no Authorize first), as on 1.6.
    _Variable(AUTHORIZE_REMOTE_START, readonly=True),
    _Variable(AUTH_CACHE_ENABLED, readonly=False, parse=_boolean),
    _Variable(LOCAL_AUTH_LIST_ENABLED, readonly=False, parse=_boolean),
    _Variable(TX_UPDATED_INTERVAL, readonly=False, parse=_integer(0)),
    _Variable(TX_UPDATED_MEASURANDS, readonly=True),
    _Variable(EV_CONNECTION_TIMEOUT, readonly=False, parse=_integer(1)),
    _Variable(STOP_TX_ON_INVALID_ID, readonly=False, parse=_boolean),
    # Fixed by the core: a session starts once authorized and a vehicle is connected, and
    # ends when either goes.
    _Variable(TX_START_POINT, readonly=True),
    _Variable(TX_STOP_POINT, readonly=True),
    # The profile comes from the gateway's configuration (no change over OCPP, so no
    # downgrade); the password is set by the station, which checks and persists it.
    _Variable(SECURITY_PROFILE, readonly=True),
    _Variable(BASIC_AUTH_PASSWORD, readonly=False, write_only=True),
)
_BY_KEY: Final = {variable.key: variable for variable in _VARIABLES}
_COMPONENTS: Final = frozenset(variable.key[0] for variable in _VARIABLES)
_ALIASES: Final[dict[VariableKey, VariableKey]] = {
    ("OCPPCommCtrlr", "MessageAttemptsTransactionEvent", None): MESSAGE_ATTEMPTS,
    ("OCPPCommCtrlr", "MessageAttemptIntervalTransactionEvent", None): MESSAGE_ATTEMPT_INTERVAL,
    ("OCPPCommCtrlr", "MessageTimeout", None): MESSAGE_TIMEOUT,
}


class DeviceModel:
    """The variables of one station. Values are typed; `get_variables`/`set_variables` speak
    the wire's strings and result codes."""

    def __init__(
        self,
        *,
        heartbeat_interval_s: int,
        tx_updated_interval_s: int,
        ev_connection_timeout_s: int,
        message_timeout_s: int,
        message_attempts: int = 5,
        message_attempt_interval_s: int = 10,
        on_change: Callable[[VariableKey, Any], None] | None = None,
        security_profile: int = 0,
    ) -> None:
        # libocpp's 2.0.1 defaults for the transaction-event retries: 5 tries, 10 s apart
        # (ocpp.md §6). Offline authorization as on the gateway's 1.6 side: valid list and
        # cache entries start offline, unknown identifiers do not, a transaction the CSMS
        # refuses afterwards is stopped.
        self._values: dict[VariableKey, Any] = {
            HEARTBEAT_INTERVAL: heartbeat_interval_s,
            MESSAGE_ATTEMPTS: message_attempts,
            MESSAGE_ATTEMPT_INTERVAL: message_attempt_interval_s,
            MESSAGE_TIMEOUT: message_timeout_s,
            # After an outage this long, statuses are re-reported: a minute, as
            # gateway.ocpp.station.OFFLINE_THRESHOLD_S gives 1.6 stations.
            OFFLINE_THRESHOLD: 60,
            LOCAL_AUTHORIZE_OFFLINE: True,
            OFFLINE_TX_FOR_UNKNOWN_ID: False,
            LOCAL_PRE_AUTHORIZE: False,
            AUTHORIZE_REMOTE_START: False,
            AUTH_CACHE_ENABLED: True,
            LOCAL_AUTH_LIST_ENABLED: True,
            TX_UPDATED_INTERVAL: tx_updated_interval_s,
            TX_UPDATED_MEASURANDS: MEASURANDS,
            EV_CONNECTION_TIMEOUT: ev_connection_timeout_s,
            STOP_TX_ON_INVALID_ID: True,
            TX_START_POINT: "Authorized,EVConnected",
            TX_STOP_POINT: "Authorized,EVConnected",
            SECURITY_PROFILE: security_profile,
            BASIC_AUTH_PASSWORD: None,
        }
        self.on_change = on_change
        """Told every value SetVariables accepted (the station applies it)."""

    def __getitem__(self, key: VariableKey) -> Any:
        return self._values[key]

    def __setitem__(self, key: VariableKey, value: Any) -> None:
        """Set a value from inside the station (e.g. the interval BootNotification gave)."""
        if key not in self._values:
            raise KeyError(key)
        self._values[key] = value

    def integer(self, key: VariableKey) -> int:
        return int(self._values[key])

    def flag(self, key: VariableKey) -> bool:
        return bool(self._values[key])

    def get_variables(self, requests: list[JsonObject]) -> list[JsonObject]:
        """GetVariables: one getVariableResult per getVariableData, in order."""
        results: list[JsonObject] = []
        for request in requests:
            status, variable = self._lookup(request)
            result: JsonObject = {
                "attributeStatus": status.value,
                "component": request["component"],
                "variable": request["variable"],
            }
            if "attributeType" in request:
                result["attributeType"] = request["attributeType"]
            if variable is not None and variable.write_only:
                result["attributeStatus"] = AttributeStatus.REJECTED.value
            elif variable is not None:
                result["attributeValue"] = _text(self._values[variable.key])
            results.append(result)
        return results

    def set_variables(self, requests: list[JsonObject]) -> list[JsonObject]:
        """SetVariables: one setVariableResult per setVariableData, in order; each accepted
        value is applied (and reported to `on_change`) before the next is looked at."""
        results: list[JsonObject] = []
        for request in requests:
            status, variable = self._lookup(request)
            if variable is not None:
                status = self._set(variable, str(request["attributeValue"]))
            result: JsonObject = {
                "attributeStatus": status.value,
                "component": request["component"],
                "variable": request["variable"],
            }
            if "attributeType" in request:
                result["attributeType"] = request["attributeType"]
            results.append(result)
        return results

    def is_variable(self, request: JsonObject, key: VariableKey) -> bool:
        """Whether a get/setVariableData entry names `key` (Actual attribute)."""
        status, variable = self._lookup(request)
        return status is AttributeStatus.ACCEPTED and variable is not None and variable.key == key

    def report(self, base: str) -> list[JsonObject]:
        """GetBaseReport's reportData: every variable (FullInventory) or the writable ones
        (ConfigurationInventory), with mutability and data type; write-only values omitted."""
        entries: list[JsonObject] = []
        for variable in _VARIABLES:
            if base == "ConfigurationInventory" and variable.readonly:
                continue
            name, variable_name, instance = variable.key
            described: JsonObject = {"name": variable_name}
            if instance is not None:
                described["instance"] = instance
            mutability = "ReadOnly" if variable.readonly else "ReadWrite"
            if variable.write_only:
                mutability = "WriteOnly"
            attribute: JsonObject = {"type": "Actual", "mutability": mutability}
            value = self._values[variable.key]
            if not variable.write_only:
                attribute["value"] = _text(value)[:2500]  # attribute values are string[2500]
            entries.append(
                {
                    "component": {"name": name},
                    "variable": described,
                    "variableAttribute": [attribute],
                    "variableCharacteristics": {
                        "dataType": _data_type(variable, value),
                        "supportsMonitoring": False,
                    },
                }
            )
        return entries

    def _lookup(self, request: JsonObject) -> tuple[AttributeStatus, _Variable | None]:
        component: JsonObject = request["component"]
        variable: JsonObject = request["variable"]
        if request.get("attributeType", "Actual") != "Actual":
            return AttributeStatus.NOT_SUPPORTED_ATTRIBUTE_TYPE, None
        name = str(component["name"])
        if name not in _COMPONENTS or "instance" in component or "evse" in component:
            return AttributeStatus.UNKNOWN_COMPONENT, None
        key: VariableKey = (name, str(variable["name"]), variable.get("instance"))
        found = _BY_KEY.get(_ALIASES.get(key, key))
        if found is None:
            return AttributeStatus.UNKNOWN_VARIABLE, None
        return AttributeStatus.ACCEPTED, found

    def _set(self, variable: _Variable, text: str) -> AttributeStatus:
        if variable.readonly or variable.parse is None:
            return AttributeStatus.REJECTED
        try:
            value = variable.parse(text)
        except ValueError:
            return AttributeStatus.REJECTED
        self._values[variable.key] = value
        if self.on_change is not None:
            self.on_change(variable.key, value)
        return AttributeStatus.ACCEPTED


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _data_type(variable: _Variable, value: Any) -> str:
    """DataEnumType (a password is a "string": the enum has no password type)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str) and "," in value:
        return "MemberList"
    return "string"
