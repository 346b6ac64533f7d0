"""Payload styles: how one family of MQTT chargers lays out its topics and payloads.

A style is data (`MqttChargerStyle`): the topics to subscribe, a decoder per state topic that
validates the JSON value and turns it into named fields, the fields a complete state needs,
the availability (last-will) topic, how the fields make a `ChargerReading`, and how commands
become publications (and which result topic acknowledges them). `MqttCharger` runs any style.

Three styles are shipped, all from chargers.md §6:

* `goe_style` - go-e API v2: `go-eCharger/{serial}/{key}`, retained JSON values, writes on
  `{topic}/set`, plain-text replies on `{topic}/result`, availability from `mcc`.
* `openwb_style` - openWB 2.x generic MQTT chargepoint: readings on
  `openWB/mqtt/chargepoint/<id>/get/<key>`, commands on `openWB/mqtt/chargepoint/<id>/set/…`.
* `evgw_style` - the gateway's own JSON schema for integrators (docs/mqtt-charger-schema.md).

Confidence marks as in the reference: [D] open-source driver, [V] vendor document,
[U] unverified - check on hardware first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.core.charger import ChargerReading, CpState

__all__ = [
    "EVGW_SCHEMA_VERSION",
    "Availability",
    "Command",
    "Commanded",
    "MqttChargerStyle",
    "Outgoing",
    "PayloadError",
    "ResultMatch",
    "evgw_style",
    "goe_style",
    "openwb_style",
]

EVGW_SCHEMA_VERSION = 1
"""Major version of the gateway's own charger schema (docs/mqtt-charger-schema.md)."""

_MAX_VOLTAGE_V = 1000.0
_MAX_CURRENT_A = 1000.0
_MAX_POWER_W = 1_000_000.0


class PayloadError(ValueError):
    """A payload the gateway will not use. `reason` is one of the counter keys:
    `empty`, `not_json`, `wrong_type`, `out_of_range`, `unknown_state`, `missing_field`,
    `unsupported_schema`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Command:
    """One change the driver wants; None fields are not part of the change."""

    current_a: float | None = None
    enabled: bool | None = None
    phases: int | None = None


@dataclass(slots=True)
class Commanded:
    """What the driver last commanded (for styles that cannot report it back, and for the
    keep-alive). `commanded` is False until the first command."""

    enabled: bool = True
    setpoint_a: float = 0.0
    paused: bool = False
    phases: int | None = None
    commanded: bool = False

    @property
    def effective_current_a(self) -> float:
        """The current the charger should offer now: 0 when disabled or paused."""
        return self.setpoint_a if self.enabled and not self.paused else 0.0


@dataclass(frozen=True, slots=True)
class ResultMatch:
    """How a command is acknowledged: a message on `topic` for which `check` returns
    (ok, reason); `check` returns None for a reply to some other command."""

    topic: str
    check: Callable[[bytes], tuple[bool, str] | None]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False
    result: ResultMatch | None = None


@dataclass(frozen=True, slots=True)
class Availability:
    """The charger's availability topic, set to offline by its last will. `decode` gives
    True (online) or False (offline) or raises `PayloadError`."""

    topic: str
    decode: Callable[[bytes], bool]
    online_payload: bytes
    offline_payload: bytes
    require_online: bool = True
    """True: no reading until the charger has said it is online."""


Decoder = Callable[[Any], dict[str, Any]]
"""Validates one parsed JSON value (orjson) and returns named fields; raises PayloadError."""


@dataclass(frozen=True)
class MqttChargerStyle:
    """A declarative description of one charger's MQTT interface (see the module docstring)."""

    name: str
    base_topic: str
    subscriptions: tuple[str, ...]
    """Topic filters the driver subscribes to (state, availability, results)."""
    state_topics: Mapping[str, Decoder]
    """Exact topic -> decoder of its JSON payload."""
    required: frozenset[str]
    """Fields without which there is no reading (ChargerUnavailable until all arrived)."""
    build_reading: Callable[[Mapping[str, Any], Commanded], ChargerReading]
    encode: Callable[[Command, Commanded, str], list[Outgoing]]
    """Publications for a command; the str is a fresh command id for correlation."""
    availability: Availability | None = None
    liveness_prefix: str | None = None
    """Other topics under this prefix (e.g. go-e's `rbt` uptime) count as signs of life
    for the stale-data timeout, without being decoded."""
    resolution_a: float = 1.0
    max_current_a: float = 32.0
    has_enable: bool = True
    """False: enable/disable is carried out through the current (0 A when disabled)."""
    zero_current_pauses: bool = True
    """False: the charger refuses currents below 6 A, so 0 A pauses through disabling."""
    supports_phases: bool = False
    keepalive_s: float | None = None
    """Republish the commanded state this often (the charger's watchdog timeout / 2)."""
    resend_on_online: bool = False
    """Resend the commanded state when the charger comes back online (it lost it)."""
    command_qos: int = 1
    notes: tuple[str, ...] = field(default_factory=tuple)


# ---------------------------------------------------------------------- value checks


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _number(
    value: Any,
    name: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError("wrong_type", f"{name} must be a number, got {_type_name(value)}")
    if integer and not (isinstance(value, int) or float(value).is_integer()):
        raise PayloadError("wrong_type", f"{name} must be an integer, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise PayloadError("out_of_range", f"{name} is not finite")
    if (lo is not None and number < lo) or (hi is not None and number > hi):
        raise PayloadError("out_of_range", f"{name} = {value!r} outside {lo}..{hi}")
    return number


def _integer(value: Any, name: str, *, lo: int, hi: int) -> int:
    return int(_number(value, name, lo=lo, hi=hi, integer=True))


def _boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError("wrong_type", f"{name} must be true or false, got {_type_name(value)}")
    return value


def _triple(value: Any, name: str, hi: float) -> tuple[float, float, float]:
    if not isinstance(value, list) or len(value) != 3:
        raise PayloadError("wrong_type", f"{name} must be an array of 3 numbers")
    a, b, c = (_number(v, f"{name}[{i}]", lo=0.0, hi=hi) for i, v in enumerate(value))
    return (a, b, c)


def _json_bool_availability(payload: bytes) -> bool:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise PayloadError("not_json", f"availability {payload[:40]!r} is not JSON") from None
    return _boolean(value, "availability")


# ---------------------------------------------------------------------- go-e API v2

# car (carState) [V: go-eCharger-API-v2 apikeys]: 0 Unknown/Error, 1 Idle, 2 Charging,
# 3 WaitCar, 4 Complete, 5 Error; null on an internal error.
_GOE_CAR_STATES = range(0, 6)
# frc (forceState) [V]: 0 Neutral (the charger's own scheduler, Awattar, surplus logic decide),
# 1 Off, 2 On.
_GOE_FRC_OFF = 1
_GOE_FRC_ON = 2
# psm (phase mode) [U: named in chargers.md §6 without its values; 0 auto, 1 single phase,
# 2 three phases as in the go-e app - check on hardware].
_GOE_PSM_1P = 1
_GOE_PSM_3P = 2
# nrg [V: apikeys]: U (L1, L2, L3, N), I (L1, L2, L3), P (L1, L2, L3, N, Total),
# pf (L1, L2, L3, N). Units V, A, W [U: API v2 as evcc reads it; the key table gives no
# units and API v1 used other scales].
_NRG_U = (0, 1, 2)
_NRG_I = (4, 5, 6)
_NRG_P_TOTAL = 11


def _goe_decoders() -> dict[str, Decoder]:
    def car(value: Any) -> dict[str, Any]:
        if value is None:  # "null if internal error"
            return {"car": 0}
        code = _number(value, "car", integer=True)
        if int(code) not in _GOE_CAR_STATES:
            raise PayloadError("unknown_state", f"car = {value!r} is not a go-e car state")
        return {"car": int(code)}

    def amp(value: Any) -> dict[str, Any]:
        return {"amp": _integer(value, "amp", lo=0, hi=80)}

    def frc(value: Any) -> dict[str, Any]:
        code = _integer(value, "frc", lo=0, hi=2)
        return {"frc": code}

    def psm(value: Any) -> dict[str, Any]:
        return {"psm": _integer(value, "psm", lo=0, hi=2)}

    def nrg(value: Any) -> dict[str, Any]:
        if not isinstance(value, list) or len(value) < _NRG_P_TOTAL + 1:
            raise PayloadError("wrong_type", "nrg must be an array of (at least) 12 numbers")
        voltages = tuple(_number(value[i], f"nrg[{i}]", lo=0, hi=_MAX_VOLTAGE_V) for i in _NRG_U)
        currents = tuple(_number(value[i], f"nrg[{i}]", lo=0, hi=_MAX_CURRENT_A) for i in _NRG_I)
        power = _number(value[_NRG_P_TOTAL], "nrg[11]", lo=0, hi=_MAX_POWER_W)
        return {"voltages": voltages, "currents": currents, "power": power}

    def eto(value: Any) -> dict[str, Any]:
        return {"eto": _number(value, "eto", lo=0)}

    def wh(value: Any) -> dict[str, Any]:
        return {"wh": _number(value, "wh", lo=0)}

    def acu(value: Any) -> dict[str, Any]:
        return {"acu": None if value is None else _integer(value, "acu", lo=0, hi=80)}

    def alw(value: Any) -> dict[str, Any]:
        return {"alw": _boolean(value, "alw")}

    def err(value: Any) -> dict[str, Any]:
        # The key table describes err with carState's text (a documentation slip); we take
        # it as the vendor's error code, 0 = none [U].
        return {"err": 0 if value is None else _integer(value, "err", lo=0, hi=2**16)}

    def model_status(value: Any) -> dict[str, Any]:
        return {"modelStatus": _integer(value, "modelStatus", lo=0, hi=255)}

    return {
        "car": car,
        "amp": amp,
        "frc": frc,
        "psm": psm,
        "nrg": nrg,
        "eto": eto,
        "wh": wh,
        "acu": acu,
        "alw": alw,
        "err": err,
        "modelStatus": model_status,
    }


def _goe_reading(fields: Mapping[str, Any], commanded: Commanded) -> ChargerReading:
    car = int(fields["car"])
    frc = int(fields["frc"])
    enabled = frc != _GOE_FRC_OFF
    alw = fields.get("alw")
    offering = bool(alw) if alw is not None else enabled
    if car == 1:
        state = CpState.A
    elif car == 2:
        state = CpState.C2
    elif car in (3, 4):
        # WaitCar / Complete: a vehicle is connected and not drawing. B2 when the charger
        # allows charging (pilot PWM on), else B1.
        state = CpState.B2 if offering else CpState.B1
    else:
        # 0 Unknown/Error, 5 Error: conservatively a fault.
        state = CpState.F
    return ChargerReading(
        cp_state=state,
        enabled=enabled,
        current_a=fields["currents"],
        voltage_v=fields["voltages"],
        power_w=float(fields["power"]),
        energy_wh=float(fields["eto"]),
        # `amp` is what the gateway commands. `acu` (allowed now) also reflects the
        # charger's own limits (temperature, its built-in load balancing), which the gateway
        # cannot change; reporting it would make the site rewrite the setpoint forever.
        setpoint_a=float(fields["amp"]) if enabled else 0.0,
        rfid=None,  # trx gives a card index, not the tag [V]; not mapped.
        error_code=int(fields.get("err", 0)),
    )


def _goe_result_check(payload: bytes) -> tuple[bool, str]:
    # [V: mqtt-en.md] the reply is plain text: "success", or an error such as
    # "value must be string 0" / "invalid json IncompleteInput: new_name".
    text = payload.decode("utf-8", errors="replace").strip()
    if text.strip('"') == "success":
        return (True, text)
    return (False, text or "empty result")


def goe_style(
    serial: str, *, prefix: str = "go-eCharger/", max_current_a: float = 32.0
) -> MqttChargerStyle:
    """go-e API v2 (chargers.md §6) for the charger with serial number `serial`.

    `prefix` is the charger's topic prefix (`mtp`, default `go-eCharger/`; older firmware
    used `/go-eCharger/`). Since firmware 051.5 MQTT writes must be enabled on the charger
    (`mcr` = false) and every write gets a reply on `{topic}/result`; the driver waits for
    it, so older firmware without replies cannot be commanded with this style.

    Enable writes `frc` = 2 (On) and disable `frc` = 1 (Off): the gateway owns the decision,
    and Neutral (0) would hand it back to the charger's own scheduler/Awattar/surplus logic,
    which would fight the site's load balancing. go-e takes whole amperes of at least 6 A
    (`amp` is uint8), so a 0 A pause is carried out by `frc` = 1.
    """
    base = f"{prefix}{serial}"
    decoders = _goe_decoders()

    def encode(command: Command, commanded: Commanded, command_id: str) -> list[Outgoing]:
        out: list[Outgoing] = []

        def write(key: str, value: int) -> None:
            out.append(
                Outgoing(
                    f"{base}/{key}/set",
                    orjson.dumps(value),
                    result=ResultMatch(f"{base}/{key}/result", _goe_result_check),
                )
            )

        if command.current_a is not None:
            write("amp", int(command.current_a))
        if command.enabled is not None:
            write("frc", _GOE_FRC_ON if command.enabled else _GOE_FRC_OFF)
        if command.phases is not None:
            write("psm", _GOE_PSM_1P if command.phases == 1 else _GOE_PSM_3P)
        return out

    return MqttChargerStyle(
        name="go-e",
        base_topic=base,
        subscriptions=(f"{base}/+", f"{base}/+/result"),
        state_topics={f"{base}/{key}": decoder for key, decoder in decoders.items()},
        required=frozenset({"car", "amp", "frc", "currents", "eto"}),
        build_reading=_goe_reading,
        encode=encode,
        # [V: mqtt-en.md] last will on {prefix}{serial}/mcc = false, retained, QoS 1; the
        # charger publishes true after connecting.
        availability=Availability(
            f"{base}/mcc", _json_bool_availability, online_payload=b"true", offline_payload=b"false"
        ),
        liveness_prefix=f"{base}/",
        resolution_a=1.0,
        max_current_a=max_current_a,
        has_enable=True,
        zero_current_pauses=False,
        supports_phases=True,
        # No watchdog in the sources (chargers.md §5), so no keep-alive. The current set over
        # the API may be lost on a restart (§5: "go-e volatile current is lost on restart"),
        # so the commanded state is sent again when mcc turns true.
        keepalive_s=None,
        resend_on_online=True,
    )


# ---------------------------------------------------------------------- openWB 2.x


def _openwb_decoders() -> dict[str, Decoder]:
    def number_field(name: str, lo: float | None, hi: float | None) -> Decoder:
        def decode(value: Any) -> dict[str, Any]:
            return {name: _number(value, name, lo=lo, hi=hi)}

        return decode

    def phases_in_use(value: Any) -> dict[str, Any]:
        return {"phases_in_use": _integer(value, "phases_in_use", lo=0, hi=3)}

    def currents(value: Any) -> dict[str, Any]:
        return {"currents": _triple(value, "currents", _MAX_CURRENT_A)}

    def voltages(value: Any) -> dict[str, Any]:
        return {"voltages": _triple(value, "voltages", _MAX_VOLTAGE_V)}

    def flag(name: str) -> Decoder:
        def decode(value: Any) -> dict[str, Any]:
            return {name: _boolean(value, name)}

        return decode

    def rfid(value: Any) -> dict[str, Any]:
        if value is None:
            return {"rfid": None}
        if not isinstance(value, str):
            raise PayloadError("wrong_type", f"rfid must be a string, got {_type_name(value)}")
        return {"rfid": value or None}

    return {
        "power": number_field("power", -_MAX_POWER_W, _MAX_POWER_W),
        "phases_in_use": phases_in_use,
        "imported": number_field("imported", 0.0, None),
        "exported": number_field("exported", 0.0, None),
        "currents": currents,
        "voltages": voltages,
        "plug_state": flag("plug_state"),
        "charge_state": flag("charge_state"),
        "rfid": rfid,
        # Units of evse_current / max_evse_current are not in the reference: A assumed [U].
        "evse_current": number_field("evse_current", 0.0, _MAX_CURRENT_A),
        "max_evse_current": number_field("max_evse_current", 0.0, _MAX_CURRENT_A),
        "soc": number_field("soc", 0.0, 100.0),
    }


def _openwb_reading(fields: Mapping[str, Any], commanded: Commanded) -> ChargerReading:
    evse_current = fields.get("evse_current")
    offered = float(evse_current) if evse_current is not None else commanded.effective_current_a
    if not fields["plug_state"]:
        state = CpState.A
    elif fields["charge_state"]:
        state = CpState.C2
    else:
        state = CpState.B2 if offered > 0 else CpState.B1
    return ChargerReading(
        cp_state=state,
        # No enable topic: enable is the gateway's own (it writes 0 A when disabled).
        enabled=commanded.enabled,
        current_a=fields["currents"],
        voltage_v=fields.get("voltages", (0.0, 0.0, 0.0)),
        power_w=float(fields["power"]),
        energy_wh=float(fields["imported"]),
        setpoint_a=offered,
        rfid=fields.get("rfid"),
        # The generic MQTT chargepoint has no fault key in the reference: a broken charger
        # shows as missing or stale data.
        error_code=0,
    )


def openwb_style(
    chargepoint_id: int | str,
    *,
    availability_topic: str | None = None,
    max_current_a: float = 32.0,
) -> MqttChargerStyle:
    """openWB 2.x generic MQTT chargepoint `chargepoint_id` (chargers.md §6).

    Readings: `openWB/mqtt/chargepoint/<id>/get/<key>`; required `power` (W),
    `phases_in_use`, `imported`/`exported` (Wh), `currents` (A, [L1, L2, L3]),
    `plug_state`, `charge_state`; optional `voltages`, `rfid`, `evse_current`,
    `max_evse_current`, `soc`. Other keys are ignored.

    Commands: the gateway plays openWB's core. In openWB a module writes
    `openWB/set/mqtt/chargepoint/<id>/set/current`; the core validates it, republishes it
    **retained without the `set/` prefix** - `openWB/mqtt/chargepoint/<id>/set/current` - and
    clears the set topic (chargers.md §6). The charger device listens to the core's
    republished topic, so that is where the gateway publishes, retained, already validated:
    `…/set/current` (A, float) and `…/set/phases_to_use` (1 or 3). Because the value is
    retained, a charger that restarts gets it again; no keep-alive is needed.

    There is no enable topic (disable = 0 A) and no result topic (a write is complete at
    the broker's PUBACK). openWB defines no last will for a chargepoint: pass
    `availability_topic` if the device publishes JSON true/false there with a last will of
    false; otherwise only the stale-data timeout tells that the device is gone.
    """
    base = f"openWB/mqtt/chargepoint/{chargepoint_id}"

    def encode(command: Command, commanded: Commanded, command_id: str) -> list[Outgoing]:
        out: list[Outgoing] = []
        if command.current_a is not None:
            out.append(
                Outgoing(f"{base}/set/current", orjson.dumps(float(command.current_a)), retain=True)
            )
        if command.phases is not None:
            out.append(
                Outgoing(f"{base}/set/phases_to_use", orjson.dumps(command.phases), retain=True)
            )
        return out

    availability = None
    if availability_topic is not None:
        availability = Availability(
            availability_topic,
            _json_bool_availability,
            online_payload=b"true",
            offline_payload=b"false",
        )
    decoders = _openwb_decoders()
    subscriptions = [f"{base}/get/+"]
    if availability_topic is not None:
        subscriptions.append(availability_topic)
    return MqttChargerStyle(
        name="openWB",
        base_topic=base,
        subscriptions=tuple(subscriptions),
        state_topics={f"{base}/get/{key}": decoder for key, decoder in decoders.items()},
        required=frozenset(
            {
                "power",
                "phases_in_use",
                "imported",
                "exported",
                "currents",
                "plug_state",
                "charge_state",
            }
        ),
        build_reading=_openwb_reading,
        encode=encode,
        availability=availability,
        liveness_prefix=f"{base}/get/",
        # openWB handles currents as floats; 0.1 A is our choice (the pilot's duty cycle
        # resolves about 0.06 A), not from the reference.
        resolution_a=0.1,
        max_current_a=max_current_a,
        has_enable=False,
        zero_current_pauses=True,
        supports_phases=True,
    )


# ---------------------------------------------------------------------- evgw schema v1

_CP_STATES = {state.value: state for state in CpState}


def _evgw_state(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError("wrong_type", f"state must be a JSON object, got {_type_name(value)}")

    def required(name: str) -> Any:
        if name not in value:
            raise PayloadError("missing_field", f"state has no {name!r}")
        return value[name]

    schema = required("schema")
    if isinstance(schema, bool) or not isinstance(schema, int):
        raise PayloadError("wrong_type", f"schema must be an integer, got {_type_name(schema)}")
    if schema != EVGW_SCHEMA_VERSION:
        raise PayloadError("unsupported_schema", f"schema {schema}, this gateway reads 1")
    cp_state = required("cp_state")
    if not isinstance(cp_state, str):
        raise PayloadError("wrong_type", f"cp_state must be a string, got {_type_name(cp_state)}")
    state = _CP_STATES.get(cp_state)
    if state is None:
        raise PayloadError("unknown_state", f"cp_state {cp_state!r} is not an IEC 61851 state")
    rfid = value.get("rfid")
    if rfid is not None and not isinstance(rfid, str):
        raise PayloadError("wrong_type", f"rfid must be a string or null, got {_type_name(rfid)}")
    voltages = value.get("voltages_v")
    return {
        "state": ChargerReading(
            cp_state=state,
            enabled=_boolean(required("enabled"), "enabled"),
            current_a=_triple(required("currents_a"), "currents_a", _MAX_CURRENT_A),
            voltage_v=(
                (0.0, 0.0, 0.0)
                if voltages is None
                else _triple(voltages, "voltages_v", _MAX_VOLTAGE_V)
            ),
            power_w=_number(required("power_w"), "power_w", lo=0, hi=_MAX_POWER_W),
            energy_wh=_number(required("energy_wh"), "energy_wh", lo=0),
            setpoint_a=_number(required("setpoint_a"), "setpoint_a", lo=0, hi=_MAX_CURRENT_A),
            rfid=rfid or None,
            error_code=_integer(value.get("error_code", 0), "error_code", lo=0, hi=2**31 - 1),
        )
    }


def _evgw_reading(fields: Mapping[str, Any], commanded: Commanded) -> ChargerReading:
    reading = fields["state"]
    assert isinstance(reading, ChargerReading)
    return reading


def _evgw_availability(payload: bytes) -> bool:
    if payload == b"online":
        return True
    if payload == b"offline":
        return False
    raise PayloadError("out_of_range", f"availability {payload[:40]!r} is not online/offline")


def evgw_style(
    charger_id: str,
    *,
    prefix: str = "evgw/chargers",
    watchdog_s: float | None = 30.0,
    failsafe_current_a: float = 0.0,
    max_current_a: float = 80.0,
) -> MqttChargerStyle:
    """The gateway's own schema, version 1 (docs/mqtt-charger-schema.md), for the charger
    whose topics are under `{prefix}/{charger_id}/`.

    `watchdog_s` goes into every command: the charger falls back to `failsafe_current_a` if
    no command arrives within it, and the gateway republishes the commanded state every
    `watchdog_s / 2`. None switches the watchdog off (no keep-alive)."""
    if watchdog_s is not None and watchdog_s <= 0:
        raise ValueError("watchdog_s must be positive (or None)")
    base = f"{prefix}/{charger_id}"
    result_topic = f"{base}/result"

    def encode(command: Command, commanded: Commanded, command_id: str) -> list[Outgoing]:
        body: dict[str, Any] = {"schema": EVGW_SCHEMA_VERSION, "id": command_id}
        if command.current_a is not None:
            body["current_a"] = command.current_a
        if command.enabled is not None:
            body["enabled"] = command.enabled
        if command.phases is not None:
            body["phases"] = command.phases
        if watchdog_s is not None:
            body["watchdog_s"] = watchdog_s
            body["failsafe_current_a"] = failsafe_current_a

        def check(payload: bytes) -> tuple[bool, str] | None:
            try:
                reply = orjson.loads(payload)
            except orjson.JSONDecodeError:
                return None
            if not isinstance(reply, dict) or reply.get("id") != command_id:
                return None
            ok = reply.get("ok") is True
            return (ok, str(reply.get("reason") or ("ok" if ok else "refused")))

        return [
            Outgoing(f"{base}/set", orjson.dumps(body), result=ResultMatch(result_topic, check))
        ]

    return MqttChargerStyle(
        name="evgw",
        base_topic=base,
        subscriptions=(f"{base}/state", f"{base}/availability", result_topic),
        state_topics={f"{base}/state": _evgw_state},
        required=frozenset({"state"}),
        build_reading=_evgw_reading,
        encode=encode,
        availability=Availability(
            f"{base}/availability",
            _evgw_availability,
            online_payload=b"online",
            offline_payload=b"offline",
        ),
        resolution_a=0.1,
        max_current_a=max_current_a,
        has_enable=True,
        zero_current_pauses=True,
        supports_phases=True,
        keepalive_s=None if watchdog_s is None else watchdog_s / 2,
    )
