"""The gateway's TOML configuration (`evgw run --config FILE`).

Format::

    [gateway]
    store = "/var/lib/evgw/evgw.sqlite3"   # SQLite file (created if missing)
    log_level = "INFO"                      # DEBUG, INFO, WARNING, ERROR
    log_format = "json"                     # "json": one JSON object per line (journald,
                                            # log shippers); "text": key=value for a console
    log_file = "/var/log/evgw/evgw.log"     # optional: also log there, rotated by size
    log_file_max_bytes = 5000000            # rotate at this size ...
    log_file_backups = 5                    # ... keeping this many old files (at most
                                            # (1 + backups) x max_bytes on disk, 30 MB)

    [upstream]
    url = "ws://csms.example.com/ocpp"      # base URL; "/<charger id>" is appended
    ocpp_version = "1.6"                    # "1.6" or "2.0.1" (one station identity per
                                            # charger either way)
    heartbeat_interval_s = 300              # until the central system sets one
    meter_value_sample_interval_s = 60      # MeterValueSampleInterval
    connection_timeout_s = 60               # ConnectionTimeOut: authorization waits for a plug
    security_profile = 2                    # OCPP security profile (gateway/ocpp/security.py):
                                            # 0 none, 1 basic auth on ws://, 2 basic auth on
                                            # wss://, 3 client certificate on wss://
    password_env = "EVGW_OCPP_PASSWORD"     # profiles 1-2 (or password / password_file); the
                                            # username is each charger's id. 1.6: 32-40 hex
                                            # digits; 2.0.1: 16-40 characters. A charger's
                                            # ocpp_password(_env/_file) overrides it; one the
                                            # CSMS sets later (stored) overrides both
    ca_file = "/etc/evgw/csms-ca.pem"       # wss://: the CSMS's CA (default: system CAs)
    cert_file = "/etc/evgw/station.pem"     # profile 3: the client certificate and key, one
    key_file = "/etc/evgw/station.key"      # for all chargers unless a charger names its own
                                            # ocpp_cert_file / ocpp_key_file (CSMSs commonly
                                            # want CN = the identity: one per charger)

    [[upstream.stations]]                   # optional: "one station with many EVSEs"
    id = "DEPOT-1"                          # one identity, one socket, for ...
    chargers = ["CP-1", "CP-2"]             # ... these: connector/EVSE 1, 2 (same version)
    serial_number = "DEPOT-0001"            # BootNotification serial (optional)

    [[chargers]]
    id = "CP-1"                             # charge point identity upstream
    profile = "generic"                     # register map, gateway/modbus/profiles/<name>.toml
    transport = "tcp"                       # tcp | rtu | rtu-over-tcp | mqtt
    host = "192.0.2.10"                     # tcp and rtu-over-tcp
    port = 502
    unit_id = 1                             # default: the profile's
    # RTU on a serial line (transport = "rtu"): chargers on the same serial_port share the bus,
    # which must then have the same settings everywhere it is named.
    serial_port = "/dev/ttyUSB0"
    baudrate = 19200                        # 1200-921600 (default: the Modbus
    parity = "E"                            # spec's 19200 8E1); parity N, E or O
    stop_bits = 1                           # 1 or 2
    byte_size = 8                           # 7 or 8
    # MQTT chargers (transport = "mqtt"; needs the [mqtt] broker table; no profile):
    mqtt_style = "go-e"                     # go-e | openwb | evgw (our own JSON schema)
    mqtt_id = "012345"                      # the charger's id in its topics (default: id)
    poll_interval_s = 1.0
    max_current_a = 16.0
    phases = 3                              # 1 or 3
    vendor = "ACME"                         # BootNotification chargePointVendor (optional)
    model = "Wallbox 11"                    # chargePointModel (optional; default: profile)
    serial_number = "12345"                 # chargePointSerialNumber (optional)
    ocpp_version = "2.0.1"                  # this charger's upstream version (default:
                                            # [upstream] ocpp_version)
    # Load balancing (only with [[circuits]]):
    circuit = "board-A"                     # the circuit it hangs under (default: the root)
    phase_rotation = "RST"                  # grid phase of each charger phase, "RST".."TSR";
                                            # "R", "S" or "T" for a single-phase charger
    min_current_a = 6.0                     # lowest current worth offering (6 A pilot floor)
    failsafe_current_a = 0.0                # what the charger falls back to when the gateway
                                            # stops writing: 0 (stop) or min..max_current_a
    watchdog_timeout_s = 60                 # that fallback's timeout; 0 = no watchdog (the
                                            # charger then keeps its last setpoint)
    priority = 0                            # admission class, higher first (-100..100)
    phase_switching = false                 # may drop a session to one phase when three do
                                            # not fit (profile needs [writes.phases])
    departure = "06:30"                     # when vehicles here usually leave (local time) ...
    energy_needed_kwh = 40.0                # ... and what they need by then: their urgency

    [mqtt]                                  # the broker MQTT chargers talk through
    host = "127.0.0.1"
    port = 1883                             # default 8883 with tls = true
    username = "evgw"                       # optional
    password_env = "EVGW_MQTT_PASSWORD"     # or password_file = "/etc/evgw/mqtt-password";
                                            # a literal `password` works but lands in backups
    tls = false
    ca_file = "/etc/evgw/ca.pem"            # with tls: the broker's CA (default: system CAs)
    cert_file = "/etc/evgw/client.pem"      # with tls: optional client certificate and key
    key_file = "/etc/evgw/client.key"
    client_id = "evgw"
    keepalive_s = 30
    stale_after_s = 30.0                    # a charger silent this long counts as offline

    [[meters]]                              # a site or circuit meter (Modbus), for headroom
    id = "site"
    profile = "eastron-sdm630"              # gateway/meters/profiles/<name>.toml
    circuit = "grid"                        # the circuit whose load it measures
    transport = "tcp"                       # tcp | rtu | rtu-over-tcp, keys as for chargers
    host = "192.0.2.20"
    unit_id = 1
    poll_interval_s = 1.0
    stale_after_s = 10.0                    # older readings count as "fully loaded"

    [[circuits]]                            # the fuse tree: exactly one root (no parent)
    id = "grid"
    max_current_a = 63.0                    # A per grid phase: one number, or [L1, L2, L3]
    max_power_w = 40000.0                   # optional power limit

    [[circuits]]
    id = "board-A"
    parent = "grid"
    max_current_a = [40.0, 40.0, 32.0]

    [balancing]
    interval_s = 2.0                        # whole-site recompute period, 1-5 s
    ramp_a_per_s = 0.5                      # raises at most this fast (cuts are at once)
    deadband_a = 0.2                        # smaller raises are not written
    min_run_s = 180                         # an admitted session keeps its turn this long
                                            # before a more urgent paused one takes it; also
                                            # the rotation period of paused sessions
    phase_up_delay_s = 600                  # 1p -> 3p only after three phases fitted this long
    phase_min_dwell_s = 180                 # no phase switch sooner than this after the last
    max_phase_switches = 4                  # per session

    [monitoring]                            # alarms (gateway.monitoring.alarms)
    check_interval_s = 5.0                  # how often alarm conditions are evaluated
    charger_offline_grace_s = 30            # not answering this long: alarm, counts as down
    uplink_grace_s = 120                    # a station's uplink down this long: alarm
    circuit_alarm_share = 0.95              # a circuit above 95 % of its limit: alarm ...
    circuit_clear_share = 0.90              # ... cleared below 90 %
    queue_alarm_threshold = 100             # OCPP offline queue longer than this: alarm
    alarm_history = 1000                    # alarms kept in memory (all are in the store)

    [api]                                   # the local HTTP API and dashboard (gateway.api)
    host = "127.0.0.1"                      # "0.0.0.0" to reach it from the depot's network
    port = 8080                             # 0: any free port

    [[api.users]]                           # at least one: no user, no API
    name = "operator"
    role = "admin"                          # read (every GET) | admin (also the writes)
    token_env = "EVGW_API_TOKEN"            # or token_file, or token; at least 16 characters

    [[tariffs]]                             # OCPI 2.2.1 tariffs (gateway.tariffs.catalog):
    file = "tariffs/public.json"            # OCPI JSON beside this file, or the OCPI fields
                                            # inline (id, currency, [[tariffs.elements]], ...);
                                            # chargers name them in [ocpi.chargers.<id>]
                                            # tariff_ids; local times: [ocpi.location] time_zone

    [ocpi]                                  # OCPI 2.2.1 CPO server, its Location and its
    port = 8090                             # partners: every key in gateway/ocpi/config.py
    public_url = "https://cpo.example.com"
    country_code = "NL"
    party_id = "EVG"

With `[[circuits]]`, a session's current comes from the balancing loop instead of
`max_current_a`. At load, the failsafe currents of the chargers under each circuit are
summed per grid phase (through their rotations) and must not exceed that circuit's limit,
so that every charger falling back at once trips no fuse (load-balancing.md §6), e.g.
`circuits[1] "board-A": failsafe currents sum to 48 A on L1, over its 40 A limit`.

Every key is checked; an unknown key is an error (a typo must not silently fall back to a
default). Errors name the key and the problem, e.g.
`chargers[2].port: must be an integer between 1 and 65535, got "abc"`.

`docs/configuration.md` is the complete reference, key by key; `tests/test_configuration_doc.py`
fails when a key accepted here has no row there, or the other way round.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from gateway.balancing.topology import (
    SINGLE_PHASE_ROTATIONS,
    THREE_PHASE_ROTATIONS,
    ChargerPlacement,
    Circuit,
    overloads,
)
from gateway.ocpi.config import OcpiSection, parse_ocpi
from gateway.ocpp.security import SecurityProfile, UpstreamSecurity
from gateway.tariffs.catalog import check_tariffs, parse_tariffs
from gateway.tariffs.model import Tariff

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS: Final = ("json", "text")
LOG_FILE_MIN_BYTES: Final = 100_000
LOG_FILE_MAX_BYTES: Final = 1_000_000_000
"""A log file rotates between 100 kB (a few hundred lines: smaller rotates too often to keep
context) and 1 GB."""
OCPP_VERSIONS: Final = ("1.6", "2.0.1")
MAX_IDENTITY_LENGTH: Final = 48
"""OCPP 2.0.1 caps the identity at 48 characters (ocpp.md §2); held to already, so a charger's
identity survives the move to 2.0.1."""
VENDOR_MAX: Final = 20
MODEL_MAX: Final = 20
SERIAL_MAX: Final = 25
"""OCPP 1.6 BootNotification CiString lengths."""
PILOT_MINIMUM_A: Final = 6.0
"""The lowest current the control pilot can offer (chargers.md §1)."""
DEFAULT_WATCHDOG_TIMEOUT_S: Final = 60
"""Alfen's default validity time (chargers.md §5); used when a balanced charger sets none."""


class ConfigError(ValueError):
    """The configuration is invalid; `problems` lists every problem found, one per key."""

    def __init__(self, problems: list[str], source: str = "configuration") -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.problems = problems
        self.source = source


@dataclass(frozen=True, slots=True)
class GatewaySection:
    store: Path = Path("evgw.sqlite3")
    log_level: str = "INFO"
    log_format: str = "json"
    """"json" (one object per line) or "text" (key=value)."""
    log_file: Path | None = None
    """Also log to this file, rotated by size (the diagnostics bundle collects it)."""
    log_file_max_bytes: int = 5_000_000
    log_file_backups: int = 5
    """Rotation keeps at most (1 + backups) x max_bytes on disk: 30 MB by default, small
    next to an edge box's SD card or eMMC, and days of INFO logs of a busy depot."""


@dataclass(frozen=True, slots=True)
class UpstreamSection:
    url: str
    ocpp_version: str = "1.6"
    heartbeat_interval_s: int = 300
    meter_value_sample_interval_s: int = 60
    connection_timeout_s: int = 60
    security_profile: int = 0
    password: str | None = field(default=None, repr=False)
    """Basic-auth password of every station (profiles 1-2) unless a charger has its own."""
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    stations: tuple[SharedStationSection, ...] = ()
    """Topology "one station with many EVSEs": groups of chargers presented as one station
    each ([[upstream.stations]]); a charger in no group is its own station (the default)."""


@dataclass(frozen=True, slots=True)
class SharedStationSection:
    """One [[upstream.stations]] group: one upstream identity whose connectors (1.6) / EVSEs
    (2.0.1) 1..N are `chargers` in this order (`gateway.ocpp.shared_station`)."""

    id: str
    chargers: tuple[str, ...]
    serial_number: str | None = None


TRANSPORTS: Final = ("tcp", "rtu", "rtu-over-tcp", "mqtt")
MODBUS_TRANSPORTS: Final = ("tcp", "rtu", "rtu-over-tcp")
MQTT_STYLES: Final = ("go-e", "openwb", "evgw")
PARITIES: Final = ("N", "E", "O")
BAUDRATES: Final = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)


@dataclass(frozen=True, slots=True)
class SerialSection:
    """An RS-485 line's settings (transport "rtu")."""

    port: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"
    stop_bits: Literal[1, 2] = 1
    byte_size: Literal[7, 8] = 8
    """Defaults: the Modbus serial-line specification's 19200 8E1."""


@dataclass(frozen=True, slots=True)
class ChargerSection:
    id: str
    host: str = ""
    """tcp and rtu-over-tcp: the device or serial-to-Ethernet converter; "" otherwise."""
    profile: str = "generic"
    port: int = 502
    unit_id: int | None = None
    transport: str = "tcp"
    serial: SerialSection | None = None
    """transport "rtu": the serial line."""
    mqtt_style: str | None = None
    """transport "mqtt": go-e, openwb or evgw."""
    mqtt_id: str | None = None
    """transport "mqtt": the charger's id in its topics (default: `id`)."""
    poll_interval_s: float = 1.0
    max_current_a: float = 16.0
    phases: int = 3
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    circuit: str | None = None
    """None: the root circuit (when there are circuits)."""
    phase_rotation: str = "RST"
    min_current_a: float = PILOT_MINIMUM_A
    failsafe_current_a: float = 0.0
    watchdog_timeout_s: int = DEFAULT_WATCHDOG_TIMEOUT_S
    priority: int = 0
    phase_switching: bool = False
    """May switch a session between three phases and one (the profile must support it)."""
    departure: str | None = None
    """Local time ("HH:MM") the vehicles at this charger usually leave: their urgency."""
    energy_needed_kwh: float | None = None
    """Energy a vehicle here usually needs by its departure."""
    ocpp_version: str | None = None
    """The charger's upstream OCPP version; None: [upstream] ocpp_version."""
    ocpp_password: str | None = field(default=None, repr=False)
    """This station's basic-auth password; None: [upstream] password."""
    ocpp_cert_file: Path | None = None
    ocpp_key_file: Path | None = None
    """This station's client certificate (profile 3); None: [upstream] cert_file/key_file."""

    @property
    def effective_rotation(self) -> str:
        """The rotation as the solver takes it: a single-phase charger by its L1's letter."""
        return self.phase_rotation[0] if self.phases == 1 else self.phase_rotation


@dataclass(frozen=True, slots=True)
class CircuitSection:
    id: str
    max_current_a: tuple[float, float, float]
    parent: str | None = None
    max_power_w: float | None = None

    @property
    def circuit(self) -> Circuit:
        return Circuit(self.id, self.parent, self.max_current_a, self.max_power_w)


@dataclass(frozen=True, slots=True)
class MqttSection:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    """Resolved from `password`, `password_env` or `password_file`; never shown in repr."""
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = "evgw"
    keepalive_s: int = 30
    stale_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class MeterSection:
    id: str
    circuit: str
    profile: str = "eastron-sdm630"
    transport: str = "tcp"
    host: str = ""
    port: int = 502
    unit_id: int | None = None
    serial: SerialSection | None = None
    poll_interval_s: float = 1.0
    stale_after_s: float = 10.0


@dataclass(frozen=True, slots=True)
class BalancingSection:
    interval_s: float = 2.0
    ramp_a_per_s: float = 0.5
    deadband_a: float = 0.2
    min_run_s: float = 180.0
    """evcc's 3 min disable delay (load-balancing.md §3.5): against pause/resume flapping."""
    phase_up_delay_s: float = 600.0
    """1p → 3p only after three phases fitted this long (EVerest's 600 s, §3.5)."""
    phase_min_dwell_s: float = 180.0
    max_phase_switches: int = 4


API_ROLES: Final = ("read", "admin")
DEFAULT_API_PORT: Final = 8080


@dataclass(frozen=True, slots=True)
class ApiUser:
    """One credential of the local API: a name (shown in logs, never the token) and a role,
    "read" (every GET) or "admin" (also the writes)."""

    name: str
    role: str
    token: str = field(repr=False)
    """Resolved from `token`, `token_env` or `token_file`; never shown in repr."""


@dataclass(frozen=True, slots=True)
class ApiSection:
    """The local HTTP API and dashboard (`gateway.api`). At least one user is required: an
    API without credentials would be open to anyone who reaches the port."""

    users: tuple[ApiUser, ...]
    host: str = "127.0.0.1"
    port: int = DEFAULT_API_PORT


@dataclass(frozen=True, slots=True)
class MonitoringSection:
    """Alarm thresholds (`gateway.monitoring.alarms`)."""

    check_interval_s: float = 5.0
    """How often the alarm conditions are evaluated: alarm and uptime times are this exact."""
    charger_offline_grace_s: float = 30.0
    """A charger not answering this long raises an alarm and counts as down in its uptime:
    longer than a reboot of a Modbus converter or a few missed polls during a link's back-off
    (1 s doubling), short enough that an operator hears of it before a driver does."""
    uplink_grace_s: float = 120.0
    """A station disconnected from the central system this long raises an alarm: several of
    the reconnect back-off's attempts (capped near 32 s plus jitter, gateway.ocpp.backoff)."""
    circuit_alarm_share: float = 0.95
    """A circuit measured above this share of its limit on any phase raises an alarm ..."""
    circuit_clear_share: float = 0.90
    """... cleared below this share (the gap keeps a load hovering at 95 % from flapping)."""
    queue_alarm_threshold: int = 100
    """An OCPP offline queue longer than this raises an alarm (cleared at half): a fifth of
    the 500-message bound (gateway.ocpp.transaction_queue), well before it drops anything."""
    alarm_history: int = 1000
    """Alarms kept in memory for `history()` (all of them are also in the store)."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    upstream: UpstreamSection
    chargers: tuple[ChargerSection, ...]
    gateway: GatewaySection = field(default_factory=GatewaySection)
    circuits: tuple[CircuitSection, ...] = ()
    """Empty: no load balancing, every session gets its charger's `max_current_a`."""
    balancing: BalancingSection = field(default_factory=BalancingSection)
    mqtt: MqttSection | None = None
    meters: tuple[MeterSection, ...] = ()
    monitoring: MonitoringSection = field(default_factory=MonitoringSection)
    api: ApiSection | None = None
    ocpi: OcpiSection | None = None
    """None: no OCPI server (`gateway.ocpi.config` documents the `[ocpi]` table)."""
    tariffs: tuple[Tariff, ...] = ()
    """The site's tariffs (`[[tariffs]]`, `gateway.tariffs.catalog`)."""
    """None: no local API and no dashboard."""

    @property
    def root_circuit(self) -> str | None:
        return next((c.id for c in self.circuits if c.parent is None), None)


STORE_FILE_NAME: Final = "evgw.sqlite3"


def default_store_path() -> Path:
    """`[gateway] store` when not given: in `$STATE_DIRECTORY` when systemd's StateDirectory=
    (or the container image) sets it, e.g. /var/lib/evgw/evgw.sqlite3; else in the working
    directory."""
    state = os.environ.get("STATE_DIRECTORY", "")
    # systemd separates several state directories with ':'; the first is the gateway's.
    return Path(state.split(":")[0]) / STORE_FILE_NAME if state else Path(STORE_FILE_NAME)


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate a TOML file. Raises `ConfigError` (also for unreadable files)."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read: {error.strerror or error}"], str(path)) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"not valid TOML: {error}"], str(path)) from error
    return parse_config(document, source=str(path), origin=path)


def parse_config(
    document: Mapping[str, Any], *, source: str = "configuration", origin: Path | None = None
) -> GatewayConfig:
    """Validate an already parsed document. Raises `ConfigError` listing every problem.
    `origin`: the file it came from (relative tariff files, tariffs' last_updated)."""
    problems: list[str] = []
    checker = _Checker(problems)
    checker.only_keys(
        "",
        document,
        {
            "gateway",
            "upstream",
            "chargers",
            "circuits",
            "balancing",
            "mqtt",
            "meters",
            "api",
            "monitoring",
            "ocpi",
            "tariffs",
        },
    )

    gateway_table = checker.table("gateway", document.get("gateway", {}))
    checker.only_keys("gateway", gateway_table, set(GatewaySection.__dataclass_fields__))
    log_file = gateway_table.get("log_file")
    gateway = GatewaySection(
        store=Path(
            checker.text("gateway.store", gateway_table.get("store", str(default_store_path())))
        ),
        log_level=checker.choice(
            "gateway.log_level", str(gateway_table.get("log_level", "INFO")).upper(), LOG_LEVELS
        ),
        log_format=checker.choice(
            "gateway.log_format", gateway_table.get("log_format", "json"), LOG_FORMATS
        ),
        log_file=None if log_file is None else Path(checker.text("gateway.log_file", log_file)),
        log_file_max_bytes=checker.integer(
            "gateway.log_file_max_bytes",
            gateway_table.get("log_file_max_bytes", 5_000_000),
            LOG_FILE_MIN_BYTES,
            LOG_FILE_MAX_BYTES,
        ),
        log_file_backups=checker.integer(
            "gateway.log_file_backups", gateway_table.get("log_file_backups", 5), 1, 100
        ),
    )

    upstream_table = checker.table("upstream", document.get("upstream"), required=True)
    checker.only_keys(
        "upstream",
        upstream_table,
        {
            "url",
            "ocpp_version",
            "heartbeat_interval_s",
            "meter_value_sample_interval_s",
            "connection_timeout_s",
            "stations",
            *_UPSTREAM_SECURITY_KEYS,
        },
    )
    upstream = UpstreamSection(
        # Without an [upstream] table at all, its missing url is not a second problem.
        url=checker.ws_url("upstream.url", upstream_table.get("url"))
        if isinstance(document.get("upstream"), Mapping)
        else "",
        ocpp_version=checker.choice(
            "upstream.ocpp_version", str(upstream_table.get("ocpp_version", "1.6")), OCPP_VERSIONS
        ),
        heartbeat_interval_s=checker.integer(
            "upstream.heartbeat_interval_s", upstream_table.get("heartbeat_interval_s", 300), 1
        ),
        meter_value_sample_interval_s=checker.integer(
            "upstream.meter_value_sample_interval_s",
            upstream_table.get("meter_value_sample_interval_s", 60),
            0,
        ),
        connection_timeout_s=checker.integer(
            "upstream.connection_timeout_s", upstream_table.get("connection_timeout_s", 60), 1
        ),
        **_parse_upstream_security(checker, upstream_table),
        stations=_parse_shared_stations(checker, upstream_table.get("stations")),
    )

    raw_chargers = document.get("chargers")
    chargers: list[ChargerSection] = []
    if not isinstance(raw_chargers, list) or not raw_chargers:
        problems.append("chargers: at least one [[chargers]] table is required")
        raw_chargers = []
    seen_ids: set[str] = set()
    for index, raw in enumerate(raw_chargers):
        charger = _parse_charger(checker, f"chargers[{index}]", raw)
        if charger is None:
            continue
        if charger.id in seen_ids:
            problems.append(f"chargers[{index}].id: duplicate charger id {charger.id!r}")
        seen_ids.add(charger.id)
        chargers.append(charger)

    mqtt = _parse_mqtt(checker, document.get("mqtt"))
    for index, charger in enumerate(chargers):
        if charger.transport == "mqtt" and mqtt is None and "mqtt" not in document:
            problems.append(
                f'chargers[{index}].transport: "mqtt" needs an [mqtt] table naming the broker'
            )
    if mqtt is not None and not any(charger.transport == "mqtt" for charger in chargers):
        problems.append('mqtt: no charger has transport = "mqtt"')
    _check_serial_buses(problems, chargers)
    _check_shared_stations(problems, upstream, chargers)

    circuits = _parse_circuits(checker, document.get("circuits"))
    meters = _parse_meters(checker, document.get("meters"))
    balancing_table = checker.table("balancing", document.get("balancing"))
    checker.only_keys("balancing", balancing_table, set(BalancingSection.__dataclass_fields__))
    if balancing_table and not circuits:
        problems.append("balancing: has no effect without [[circuits]]")
    balancing = BalancingSection(
        interval_s=checker.number(
            "balancing.interval_s", balancing_table.get("interval_s", 2.0), 1.0, 5.0
        ),
        ramp_a_per_s=checker.number(
            "balancing.ramp_a_per_s", balancing_table.get("ramp_a_per_s", 0.5), 0.01, 100.0
        ),
        deadband_a=checker.number(
            "balancing.deadband_a", balancing_table.get("deadband_a", 0.2), 0.0, 5.0
        ),
        min_run_s=checker.number(
            "balancing.min_run_s", balancing_table.get("min_run_s", 180.0), 0.0, 3600.0
        ),
        phase_up_delay_s=checker.number(
            "balancing.phase_up_delay_s",
            balancing_table.get("phase_up_delay_s", 600.0),
            0.0,
            86400.0,
        ),
        phase_min_dwell_s=checker.number(
            "balancing.phase_min_dwell_s",
            balancing_table.get("phase_min_dwell_s", 180.0),
            0.0,
            86400.0,
        ),
        max_phase_switches=checker.integer(
            "balancing.max_phase_switches", balancing_table.get("max_phase_switches", 4), 0, 100
        ),
    )
    if not problems:
        _check_balancing(problems, circuits, chargers)
    if not problems:
        _check_meters(problems, meters, circuits)
    api = _parse_api(checker, document.get("api"))
    monitoring = _parse_monitoring(checker, document.get("monitoring"))
    ocpi = parse_ocpi(checker, document.get("ocpi"), {charger.id for charger in chargers})
    owner = None if ocpi is None else (ocpi.country_code, ocpi.party_id)
    tariffs = parse_tariffs(problems, document.get("tariffs"), origin=origin, owner=owner)
    if not problems:
        check_tariffs(
            problems,
            tariffs,
            {}
            if ocpi is None
            else {
                f"ocpi.chargers.{charger.id}.tariff_ids": ocpi.charger(charger.id).tariff_ids
                for charger in chargers
            },
            time_zone_key=None if ocpi is None else "ocpi.location.time_zone",
        )
    if not problems:
        _check_upstream_security(problems, upstream, chargers)

    if problems:
        raise ConfigError(problems, source)
    return GatewayConfig(
        upstream=upstream,
        chargers=tuple(chargers),
        gateway=gateway,
        circuits=tuple(circuits),
        balancing=balancing,
        mqtt=mqtt,
        meters=tuple(meters),
        api=api,
        monitoring=monitoring,
        ocpi=ocpi,
        tariffs=tuple(tariffs),
    )


_CIRCUIT_KEYS = frozenset({"id", "parent", "max_current_a", "max_power_w"})


def _parse_circuits(checker: _Checker, raw_circuits: Any) -> list[CircuitSection]:
    if raw_circuits is None:
        return []
    if not isinstance(raw_circuits, list):
        checker.problems.append("circuits: must be an array of tables [[circuits]]")
        return []
    circuits: list[CircuitSection] = []
    for index, raw in enumerate(raw_circuits):
        where = f"circuits[{index}]"
        table = checker.table(where, raw)
        checker.only_keys(where, table, _CIRCUIT_KEYS)
        parent = table.get("parent")
        power = table.get("max_power_w")
        circuits.append(
            CircuitSection(
                id=checker.text(f"{where}.id", table.get("id")),
                parent=None if parent is None else checker.text(f"{where}.parent", parent),
                max_current_a=checker.per_phase(
                    f"{where}.max_current_a", table.get("max_current_a")
                ),
                max_power_w=None
                if power is None
                else checker.number(f"{where}.max_power_w", power, 1.0, 1e9),
            )
        )
    return circuits


def _check_balancing(
    problems: list[str], circuits: list[CircuitSection], chargers: list[ChargerSection]
) -> None:
    """The fuse tree's shape, the chargers' places in it, and the failsafe sums."""
    if not circuits:
        for index, charger in enumerate(chargers):
            if charger.circuit is not None:
                problems.append(f"chargers[{index}].circuit: no [[circuits]] are configured")
        return
    index_of: dict[str, int] = {}
    for index, circuit in enumerate(circuits):
        if circuit.id in index_of:
            problems.append(f"circuits[{index}].id: duplicate circuit id {circuit.id!r}")
        index_of.setdefault(circuit.id, index)
    roots = [index for index, circuit in enumerate(circuits) if circuit.parent is None]
    if not roots:
        problems.append("circuits: no root circuit (exactly one must have no parent)")
    for index in roots[1:]:
        problems.append(
            f"circuits[{index}].parent: missing, but {circuits[roots[0]].id!r} is already the"
            " root (only one circuit may have no parent)"
        )
    for index, circuit in enumerate(circuits):
        if circuit.parent is not None and circuit.parent not in index_of:
            problems.append(f"circuits[{index}].parent: unknown circuit {circuit.parent!r}")
    if problems:
        return
    by_id = {circuit.id: circuit for circuit in circuits}
    reported: set[str] = set()
    for index, circuit in enumerate(circuits):
        path = [circuit.id]
        current = circuit.parent
        while current is not None and current not in path:
            path.append(current)
            current = by_id[current].parent
        if current is not None and current not in reported:
            cycle = [*path[path.index(current) :], current]
            reported.update(cycle)
            problems.append(f"circuits[{index}].parent: cycle {' -> '.join(cycle)}")
    root = circuits[roots[0]].id
    placements: list[ChargerPlacement] = []
    failsafe: dict[str, float] = {}
    for index, charger in enumerate(chargers):
        where = f"chargers[{index}]"
        if charger.circuit is not None and charger.circuit not in by_id:
            problems.append(f"{where}.circuit: unknown circuit {charger.circuit!r}")
            continue
        rotations = SINGLE_PHASE_ROTATIONS | THREE_PHASE_ROTATIONS
        if charger.phases == 3:
            rotations = THREE_PHASE_ROTATIONS
        if charger.phase_rotation not in rotations:
            problems.append(
                f"{where}.phase_rotation: must be one of {', '.join(sorted(rotations))} for a"
                f" {charger.phases}-phase charger, got {charger.phase_rotation!r}"
            )
            continue
        if charger.min_current_a > charger.max_current_a:
            problems.append(
                f"{where}.min_current_a: {charger.min_current_a:g} A is above max_current_a"
                f" {charger.max_current_a:g} A"
            )
        if charger.failsafe_current_a > charger.max_current_a:
            problems.append(
                f"{where}.failsafe_current_a: {charger.failsafe_current_a:g} A is above"
                f" max_current_a {charger.max_current_a:g} A"
            )
        placements.append(
            ChargerPlacement(
                charger.id, charger.circuit or root, charger.phases, charger.effective_rotation
            )
        )
        failsafe[charger.id] = charger.failsafe_current_a
    if problems:
        return
    for overload in overloads({c.id: c.circuit for c in circuits}, placements, failsafe):
        index = index_of[overload.circuit]
        problems.append(
            f'circuits[{index}] "{overload.circuit}": ' + overload.describe("failsafe currents")
        )


_SERIAL_KEYS = frozenset({"serial_port", "baudrate", "parity", "stop_bits", "byte_size"})
_CHARGER_KEYS = (
    (frozenset(ChargerSection.__dataclass_fields__) - {"serial"})
    | _SERIAL_KEYS
    | {"ocpp_password_env", "ocpp_password_file"}
)


def _parse_endpoint(
    checker: _Checker, where: str, table: Mapping[str, Any], transports: tuple[str, ...]
) -> tuple[str, str, int, SerialSection | None]:
    """transport, host, port and serial settings; names the key that does not fit the
    transport (a serial_port on a TCP charger is a mistake worth hearing about)."""
    transport = checker.choice(f"{where}.transport", table.get("transport", "tcp"), transports)
    host = ""
    port = 502
    serial: SerialSection | None = None
    if transport in ("tcp", "rtu-over-tcp"):
        host = checker.text(f"{where}.host", table.get("host"))
        port = checker.integer(f"{where}.port", table.get("port", 502), 1, 65535)
        stray = sorted(_SERIAL_KEYS & set(table))
    elif transport == "rtu":
        serial = SerialSection(
            port=checker.text(f"{where}.serial_port", table.get("serial_port")),
            baudrate=checker.choice(f"{where}.baudrate", table.get("baudrate", 19200), BAUDRATES),
            parity=checker.choice(f"{where}.parity", table.get("parity", "E"), PARITIES),
            stop_bits=checker.choice(f"{where}.stop_bits", table.get("stop_bits", 1), (1, 2)),
            byte_size=checker.choice(f"{where}.byte_size", table.get("byte_size", 8), (7, 8)),
        )
        stray = sorted({"host", "port"} & set(table))
    else:
        stray = sorted((_SERIAL_KEYS | {"host", "port", "unit_id", "profile"}) & set(table))
    for key in stray:
        checker.problems.append(f"{where}.{key}: does not apply to transport {transport!r}")
    return transport, host, port, serial


def _parse_charger(checker: _Checker, where: str, raw: Any) -> ChargerSection | None:
    table = checker.table(where, raw)
    if not table:
        return None
    checker.only_keys(where, table, _CHARGER_KEYS)
    identity = checker.text(f"{where}.id", table.get("id"))
    if len(identity) > MAX_IDENTITY_LENGTH or ":" in identity:
        checker.problems.append(
            f"{where}.id: must be at most {MAX_IDENTITY_LENGTH} characters without ':',"
            f" got {identity!r}"
        )
    unit_id = table.get("unit_id")
    circuit = table.get("circuit")
    transport, host, port, serial = _parse_endpoint(checker, where, table, TRANSPORTS)
    mqtt_style: str | None = None
    mqtt_id: str | None = None
    if transport == "mqtt":
        mqtt_style = checker.choice(f"{where}.mqtt_style", table.get("mqtt_style"), MQTT_STYLES)
        raw_mqtt_id = table.get("mqtt_id")
        mqtt_id = identity if raw_mqtt_id is None else checker.text(f"{where}.mqtt_id", raw_mqtt_id)
        if mqtt_id and any(char in mqtt_id for char in "+#/"):
            checker.problems.append(
                f"{where}.mqtt_id: must not contain MQTT wildcards or '/', got {mqtt_id!r}"
            )
    else:
        for key in ("mqtt_style", "mqtt_id"):
            if key in table:
                checker.problems.append(
                    f'{where}.{key}: only for transport "mqtt", not {transport!r}'
                )
    if table.get("phase_switching") is True and table.get("phases", 3) != 3:
        checker.problems.append(f"{where}.phase_switching: only a three-phase charger switches")
    failsafe = checker.number(
        f"{where}.failsafe_current_a", table.get("failsafe_current_a", 0.0), 0.0, 1000.0
    )
    if 0 < failsafe < PILOT_MINIMUM_A:
        checker.problems.append(
            f"{where}.failsafe_current_a: must be 0 (stop) or at least {PILOT_MINIMUM_A:g} A"
            f" (the pilot's floor), got {failsafe:g}"
        )
    return ChargerSection(
        id=identity,
        host=host,
        profile=checker.text(f"{where}.profile", table.get("profile", "generic")),
        port=port,
        unit_id=None if unit_id is None else checker.integer(f"{where}.unit_id", unit_id, 0, 255),
        transport=transport,
        serial=serial,
        mqtt_style=mqtt_style,
        mqtt_id=mqtt_id,
        poll_interval_s=checker.number(
            f"{where}.poll_interval_s", table.get("poll_interval_s", 1.0), 0.1, 3600
        ),
        max_current_a=checker.number(
            f"{where}.max_current_a", table.get("max_current_a", 16.0), 6.0, 1000.0
        ),
        phases=checker.choice(f"{where}.phases", table.get("phases", 3), (1, 3)),
        vendor=checker.optional_text(f"{where}.vendor", table.get("vendor"), VENDOR_MAX),
        model=checker.optional_text(f"{where}.model", table.get("model"), MODEL_MAX),
        serial_number=checker.optional_text(
            f"{where}.serial_number", table.get("serial_number"), SERIAL_MAX
        ),
        circuit=None if circuit is None else checker.text(f"{where}.circuit", circuit),
        phase_rotation=checker.text(f"{where}.phase_rotation", table.get("phase_rotation", "RST")),
        min_current_a=checker.number(
            f"{where}.min_current_a", table.get("min_current_a", PILOT_MINIMUM_A), 6.0, 1000.0
        ),
        failsafe_current_a=failsafe,
        watchdog_timeout_s=checker.integer(
            f"{where}.watchdog_timeout_s",
            table.get("watchdog_timeout_s", DEFAULT_WATCHDOG_TIMEOUT_S),
            0,
            65535,
        ),
        priority=checker.integer(f"{where}.priority", table.get("priority", 0), -100, 100),
        phase_switching=checker.boolean(
            f"{where}.phase_switching", table.get("phase_switching", False)
        ),
        departure=None
        if table.get("departure") is None
        else checker.clock_time(f"{where}.departure", table.get("departure")),
        energy_needed_kwh=None
        if table.get("energy_needed_kwh") is None
        else checker.number(
            f"{where}.energy_needed_kwh", table.get("energy_needed_kwh"), 0.1, 1000.0
        ),
        ocpp_version=None
        if table.get("ocpp_version") is None
        else checker.choice(f"{where}.ocpp_version", str(table.get("ocpp_version")), OCPP_VERSIONS),
        ocpp_password=_secret(checker, where, "ocpp_password", table),
        ocpp_cert_file=_optional_path(checker, f"{where}.ocpp_cert_file", table),
        ocpp_key_file=_optional_path(checker, f"{where}.ocpp_key_file", table),
    )


def _check_serial_buses(problems: list[str], chargers: list[ChargerSection]) -> None:
    """Chargers naming the same serial port share one bus: its settings must agree."""
    first: dict[str, tuple[int, SerialSection]] = {}
    for index, charger in enumerate(chargers):
        if charger.serial is None:
            continue
        seen = first.setdefault(charger.serial.port, (index, charger.serial))
        if seen[1] != charger.serial:
            problems.append(
                f"chargers[{index}].serial_port: {charger.serial.port!r} is already used by"
                f" chargers[{seen[0]}] with other settings ({_serial_text(seen[1])} there,"
                f" {_serial_text(charger.serial)} here); one bus has one setting"
            )


def _serial_text(serial: SerialSection) -> str:
    return f"{serial.baudrate} {serial.byte_size}{serial.parity}{serial.stop_bits}"


_MQTT_KEYS = frozenset(MqttSection.__dataclass_fields__) | {"password_env", "password_file"}


def _parse_mqtt(checker: _Checker, raw: Any) -> MqttSection | None:
    if raw is None:
        return None
    table = checker.table("mqtt", raw)
    checker.only_keys("mqtt", table, _MQTT_KEYS)
    tls = table.get("tls", False)
    if not isinstance(tls, bool):
        checker.problems.append(f"mqtt.tls: must be true or false, got {_shown(tls)}")
        tls = False
    username = table.get("username")

    def optional_path(key: str) -> Path | None:
        value = table.get(key)
        if value is None:
            return None
        if not tls:
            checker.problems.append(f"mqtt.{key}: only with tls = true")
        return Path(checker.text(f"mqtt.{key}", value))

    ca_file = optional_path("ca_file")
    cert_file = optional_path("cert_file")
    key_file = optional_path("key_file")
    if (cert_file is None) != (key_file is None):
        checker.problems.append(
            "mqtt.cert_file: a client certificate needs both cert_file and key_file"
        )
    return MqttSection(
        host=checker.text("mqtt.host", table.get("host")),
        port=checker.integer("mqtt.port", table.get("port", 8883 if tls else 1883), 1, 65535),
        username=None if username is None else checker.text("mqtt.username", username),
        password=_secret(checker, "mqtt", "password", table),
        tls=tls,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
        client_id=checker.text("mqtt.client_id", table.get("client_id", "evgw")),
        keepalive_s=checker.integer("mqtt.keepalive_s", table.get("keepalive_s", 30), 5, 3600),
        stale_after_s=checker.number(
            "mqtt.stale_after_s", table.get("stale_after_s", 30.0), 1.0, 3600.0
        ),
    )


_UPSTREAM_SECURITY_KEYS: Final = frozenset(
    {"security_profile", "password", "password_env", "password_file", "ca_file"}
    | {"cert_file", "key_file"}
)


def _optional_path(checker: _Checker, where: str, table: Mapping[str, Any]) -> Path | None:
    value = table.get(where.rsplit(".", 1)[-1])
    return None if value is None else Path(checker.text(where, value))


def _parse_upstream_security(checker: _Checker, table: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "security_profile": checker.integer(
            "upstream.security_profile", table.get("security_profile", 0), 0, 3
        ),
        "password": _secret(checker, "upstream", "password", table),
        "ca_file": _optional_path(checker, "upstream.ca_file", table),
        "cert_file": _optional_path(checker, "upstream.cert_file", table),
        "key_file": _optional_path(checker, "upstream.key_file", table),
    }


def station_security(upstream: UpstreamSection, charger: ChargerSection) -> UpstreamSecurity:
    """A charger's upstream security: `[upstream]` with the charger's own password and
    client certificate where it names them."""
    return UpstreamSecurity(
        profile=SecurityProfile(upstream.security_profile),
        password=charger.ocpp_password or upstream.password,
        ca_file=upstream.ca_file,
        cert_file=charger.ocpp_cert_file or upstream.cert_file,
        key_file=charger.ocpp_key_file or upstream.key_file,
    )


def _parse_shared_stations(checker: _Checker, raw: Any) -> tuple[SharedStationSection, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        checker.problems.append(
            "upstream.stations: must be an array of tables [[upstream.stations]],"
            f" got {_shown(raw)}"
        )
        return ()
    stations: list[SharedStationSection] = []
    for index, item in enumerate(raw):
        where = f"upstream.stations[{index}]"
        table = checker.table(where, item)
        if not table:
            continue
        checker.only_keys(where, table, {"id", "chargers", "serial_number"})
        identity = checker.text(f"{where}.id", table.get("id"))
        if len(identity) > MAX_IDENTITY_LENGTH or ":" in identity:
            checker.problems.append(
                f"{where}.id: must be at most {MAX_IDENTITY_LENGTH} characters without ':',"
                f" got {identity!r}"
            )
        members = table.get("chargers")
        if (
            not isinstance(members, list)
            or not members
            or not all(isinstance(m, str) and m for m in members)
        ):
            checker.problems.append(
                f"{where}.chargers: must be a non-empty list of charger ids, got {_shown(members)}"
            )
            members = []
        stations.append(
            SharedStationSection(
                id=identity,
                chargers=tuple(members),
                serial_number=checker.optional_text(
                    f"{where}.serial_number", table.get("serial_number"), SERIAL_MAX
                ),
            )
        )
    return tuple(stations)


def _check_shared_stations(
    problems: list[str], upstream: UpstreamSection, chargers: list[ChargerSection]
) -> None:
    """Each group names known chargers, each at most once in all groups, of one OCPP version
    and one set of upstream credentials, and its identity is nobody else's."""
    by_id = {charger.id: charger for charger in chargers}
    grouped: dict[str, str] = {}
    identities: dict[str, str] = {}
    for index, station in enumerate(upstream.stations):
        where = f"upstream.stations[{index}]"
        if station.id in identities:
            problems.append(f"{where}.id: {station.id!r} is also {identities[station.id]}.id")
        identities.setdefault(station.id, where)
        if station.id in by_id and station.id not in station.chargers:
            problems.append(
                f"{where}.id: {station.id!r} is the identity of charger {station.id!r},"
                " which is not in this group"
            )
        versions: set[str] = set()
        credentials: set[tuple[str | None, Path | None, Path | None]] = set()
        for member in station.chargers:
            charger = by_id.get(member)
            if charger is None:
                problems.append(f"{where}.chargers: unknown charger id {member!r}")
                continue
            if member in grouped:
                problems.append(
                    f"{where}.chargers: charger {member!r} is already in {grouped[member]}"
                )
            grouped.setdefault(member, where)
            versions.add(charger.ocpp_version or upstream.ocpp_version)
            credentials.add((charger.ocpp_password, charger.ocpp_cert_file, charger.ocpp_key_file))
        if len(versions) > 1:
            problems.append(
                f"{where}.chargers: one station speaks one OCPP version, these chargers have"
                f" {', '.join(sorted(versions))} (chargers[].ocpp_version)"
            )
        if len(credentials) > 1:
            problems.append(
                f"{where}.chargers: one station has one set of credentials, these chargers"
                " differ in ocpp_password / ocpp_cert_file / ocpp_key_file"
            )


def _check_upstream_security(
    problems: list[str], upstream: UpstreamSection, chargers: list[ChargerSection]
) -> None:
    """Each station's profile against its URL, password rule and files (checked at start so
    a station never runs with credentials the CSMS must refuse)."""
    for index, charger in enumerate(chargers):
        security = station_security(upstream, charger)
        version = charger.ocpp_version or upstream.ocpp_version
        where = "upstream" if charger.ocpp_password is None else f"chargers[{index}]"
        for problem in security.problems(upstream.url, version):
            problems.append(f"{where}.security_profile: {problem} (charger {charger.id!r})")
        for key, path in (
            ("upstream.ca_file", security.ca_file),
            (f"chargers[{index}].ocpp_cert_file", charger.ocpp_cert_file),
            (f"chargers[{index}].ocpp_key_file", charger.ocpp_key_file),
            ("upstream.cert_file", None if charger.ocpp_cert_file else upstream.cert_file),
            ("upstream.key_file", None if charger.ocpp_key_file else upstream.key_file),
        ):
            problem = f"{key}: {path} is not a readable file"
            if path is not None and not path.is_file() and problem not in problems:
                problems.append(problem)
        if not problems:
            # The files exist: they must also load (PEM, a key matching its certificate).
            try:
                security.ssl_context(upstream.url)
            except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
                problems.append(
                    f"{where}.security_profile: the TLS files do not load for charger"
                    f" {charger.id!r}: {error}"
                )
    if upstream.security_profile in (0, 3):
        if upstream.password is not None:
            problems.append("upstream.password: only with security_profile 1 or 2")
        problems.extend(
            f"chargers[{index}].ocpp_password: only with security_profile 1 or 2"
            for index, charger in enumerate(chargers)
            if charger.ocpp_password is not None
        )


def _secret(checker: _Checker, where: str, key: str, table: Mapping[str, Any]) -> str | None:
    """A secret from `key`, `key_env` (an environment variable) or `key_file` (a file's
    first line): at most one of them. The value is never put into a problem message."""
    given = [name for name in (key, f"{key}_env", f"{key}_file") if name in table]
    if not given:
        return None
    if len(given) > 1:
        checker.problems.append(f"{where}.{given[1]}: give only one of {', '.join(given)}")
        return None
    name = given[0]
    value = table[name]
    if not isinstance(value, str) or not value:
        checker.problems.append(f"{where}.{name}: must be a non-empty string")
        return None
    if name == key:
        return value
    if name.endswith("_env"):
        secret = os.environ.get(value)
        if secret is None:
            checker.problems.append(f"{where}.{name}: environment variable {value} is not set")
        return secret
    try:
        lines = Path(value).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        checker.problems.append(f"{where}.{name}: cannot read {value}: {error.strerror or error}")
        return None
    if not lines or not lines[0]:
        checker.problems.append(f"{where}.{name}: {value} is empty")
        return None
    return lines[0]


def _parse_monitoring(checker: _Checker, raw: Any) -> MonitoringSection:
    table = checker.table("monitoring", raw)
    checker.only_keys("monitoring", table, set(MonitoringSection.__dataclass_fields__))
    defaults = MonitoringSection()

    def number(key: str, low: float, high: float) -> float:
        value = table.get(key, getattr(defaults, key))
        return checker.number(f"monitoring.{key}", value, low, high)

    section = MonitoringSection(
        check_interval_s=number("check_interval_s", 0.1, 60.0),
        charger_offline_grace_s=number("charger_offline_grace_s", 0.0, 86400.0),
        uplink_grace_s=number("uplink_grace_s", 0.0, 86400.0),
        circuit_alarm_share=number("circuit_alarm_share", 0.1, 1.0),
        circuit_clear_share=number("circuit_clear_share", 0.05, 1.0),
        queue_alarm_threshold=checker.integer(
            "monitoring.queue_alarm_threshold",
            table.get("queue_alarm_threshold", defaults.queue_alarm_threshold),
            1,
            1_000_000,
        ),
        alarm_history=checker.integer(
            "monitoring.alarm_history",
            table.get("alarm_history", defaults.alarm_history),
            10,
            100_000,
        ),
    )
    if section.circuit_clear_share >= section.circuit_alarm_share:
        checker.problems.append(
            f"monitoring.circuit_clear_share: {section.circuit_clear_share:g} must be below"
            f" circuit_alarm_share {section.circuit_alarm_share:g}"
        )
    return section


_API_USER_KEYS = frozenset({"name", "role", "token", "token_env", "token_file"})
MIN_API_TOKEN_LENGTH: Final = 16
"""A token shorter than this is guessable by an attacker on the depot's network."""


def _parse_api(checker: _Checker, raw: Any) -> ApiSection | None:
    if raw is None:
        return None
    table = checker.table("api", raw)
    checker.only_keys("api", table, {"host", "port", "users"})
    raw_users = table.get("users")
    users: list[ApiUser] = []
    if not isinstance(raw_users, list) or not raw_users:
        checker.problems.append(
            "api.users: at least one [[api.users]] table is required (an API without"
            " credentials would be open to anyone who reaches the port)"
        )
        raw_users = []
    names: set[str] = set()
    tokens: set[str] = set()
    for index, raw_user in enumerate(raw_users):
        where = f"api.users[{index}]"
        user_table = checker.table(where, raw_user)
        checker.only_keys(where, user_table, _API_USER_KEYS)
        name = checker.text(f"{where}.name", user_table.get("name"))
        if name in names:
            checker.problems.append(f"{where}.name: duplicate user name {name!r}")
        names.add(name)
        role = checker.choice(f"{where}.role", user_table.get("role"), API_ROLES)
        token = _secret(checker, where, "token", user_table)
        if token is None:
            if not any(key in user_table for key in ("token", "token_env", "token_file")):
                checker.problems.append(f"{where}.token: missing (token, token_env or token_file)")
            continue
        if len(token) < MIN_API_TOKEN_LENGTH:
            # The length only: the token itself never goes into a message.
            checker.problems.append(
                f"{where}.token: must be at least {MIN_API_TOKEN_LENGTH} characters,"
                f" got {len(token)}"
            )
        elif token in tokens:
            checker.problems.append(f"{where}.token: the same token as another user")
        tokens.add(token)
        users.append(ApiUser(name=name, role=role, token=token))
    return ApiSection(
        users=tuple(users),
        host=checker.text("api.host", table.get("host", "127.0.0.1")),
        port=checker.integer("api.port", table.get("port", DEFAULT_API_PORT), 0, 65535),
    )


_METER_KEYS = (frozenset(MeterSection.__dataclass_fields__) - {"serial"}) | _SERIAL_KEYS


def _parse_meters(checker: _Checker, raw_meters: Any) -> list[MeterSection]:
    if raw_meters is None:
        return []
    if not isinstance(raw_meters, list):
        checker.problems.append("meters: must be an array of tables [[meters]]")
        return []
    meters: list[MeterSection] = []
    for index, raw in enumerate(raw_meters):
        where = f"meters[{index}]"
        table = checker.table(where, raw)
        checker.only_keys(where, table, _METER_KEYS)
        transport, host, port, serial = _parse_endpoint(checker, where, table, MODBUS_TRANSPORTS)
        unit_id = table.get("unit_id")
        poll = checker.number(
            f"{where}.poll_interval_s", table.get("poll_interval_s", 1.0), 0.1, 60
        )
        stale = checker.number(
            f"{where}.stale_after_s", table.get("stale_after_s", 10.0), 0.2, 3600
        )
        if stale <= poll:
            checker.problems.append(
                f"{where}.stale_after_s: {stale:g} s must be longer than poll_interval_s {poll:g} s"
            )
        meters.append(
            MeterSection(
                id=checker.text(f"{where}.id", table.get("id")),
                circuit=checker.text(f"{where}.circuit", table.get("circuit")),
                profile=checker.text(f"{where}.profile", table.get("profile", "eastron-sdm630")),
                transport=transport,
                host=host,
                port=port,
                unit_id=None
                if unit_id is None
                else checker.integer(f"{where}.unit_id", unit_id, 0, 255),
                serial=serial,
                poll_interval_s=poll,
                stale_after_s=stale,
            )
        )
    return meters


def _check_meters(
    problems: list[str], meters: list[MeterSection], circuits: list[CircuitSection]
) -> None:
    known = {circuit.id for circuit in circuits}
    seen_ids: set[str] = set()
    measured: dict[str, int] = {}
    for index, meter in enumerate(meters):
        where = f"meters[{index}]"
        if meter.id in seen_ids:
            problems.append(f"{where}.id: duplicate meter id {meter.id!r}")
        seen_ids.add(meter.id)
        if not circuits:
            problems.append(f"{where}.circuit: a meter needs [[circuits]] to give headroom to")
        elif meter.circuit not in known:
            problems.append(f"{where}.circuit: unknown circuit {meter.circuit!r}")
        elif meter.circuit in measured:
            problems.append(
                f"{where}.circuit: {meter.circuit!r} is already measured by"
                f" meters[{measured[meter.circuit]}]"
            )
        measured.setdefault(meter.circuit, index)


@dataclass(slots=True)
class _Checker:
    """Collects problems instead of stopping at the first, and returns a harmless placeholder
    for a bad value so checking can go on."""

    problems: list[str]

    def only_keys(
        self, where: str, table: Mapping[str, Any], allowed: frozenset[str] | set[str]
    ) -> None:
        for key in table:
            if key not in allowed:
                name = f"{where}.{key}" if where else key
                # A typo gets its likely correction instead of a list of thirty keys.
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.7)
                hint = (
                    f"did you mean {close[0]}?"
                    if close
                    else f"allowed: {', '.join(sorted(allowed))}"
                )
                self.problems.append(f"{name}: unknown key ({hint})")

    def table(self, where: str, value: Any, *, required: bool = False) -> Mapping[str, Any]:
        if value is None:
            if required:
                self.problems.append(f"{where}: missing required table [{where}]")
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{where}: must be a table, got {_shown(value)}")
            return {}
        return value

    def boolean(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.problems.append(f"{where}: must be true or false, got {_shown(value)}")
            return False
        return value

    def clock_time(self, where: str, value: Any) -> str:
        """A local time of day, "HH:MM" (24 h)."""
        text = value if isinstance(value, str) else ""
        hours, _, minutes = text.partition(":")
        if not (
            len(hours) == 2
            and len(minutes) == 2
            and hours.isdigit()
            and minutes.isdigit()
            and int(hours) < 24
            and int(minutes) < 60
        ):
            self.problems.append(f'{where}: must be a time of day "HH:MM", got {_shown(value)}')
            return "00:00"
        return text

    def text(self, where: str, value: Any) -> str:
        if value is None:
            self.problems.append(f"{where}: missing required key")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where}: must be a non-empty string, got {_shown(value)}")
            return ""
        return value

    def optional_text(self, where: str, value: Any, max_length: int) -> str | None:
        if value is None:
            return None
        text = self.text(where, value)
        if len(text) > max_length:
            self.problems.append(
                f"{where}: must be at most {max_length} characters, got {len(text)}"
            )
        return text

    def integer(self, where: str, value: Any, low: int, high: int | None = None) -> int:
        in_range = isinstance(value, int) and not isinstance(value, bool) and value >= low
        if in_range and high is not None:
            in_range = value <= high
        if not in_range:
            bounds = f"between {low} and {high}" if high is not None else f"of at least {low}"
            self.problems.append(f"{where}: must be an integer {bounds}, got {_shown(value)}")
            return low
        return int(value)

    def number(self, where: str, value: Any, low: float, high: float) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= float(value) <= high:
            # "32 A" or "16": a number written as text, often with its unit.
            hint = (
                " (a plain number: the key's name gives the unit)" if isinstance(value, str) else ""
            )
            self.problems.append(
                f"{where}: must be a number between {low:g} and {high:g}, got {_shown(value)}{hint}"
            )
            return low
        return float(value)

    def per_phase(self, where: str, value: Any) -> tuple[float, float, float]:
        """One current for all three grid phases, or a list of three (L1, L2, L3)."""
        values = value if isinstance(value, list) else [value] * 3
        if value is None:
            self.problems.append(f"{where}: missing required key")
            return (0.0, 0.0, 0.0)
        if len(values) != 3:
            self.problems.append(
                f"{where}: must be a number or a list of 3 (L1, L2, L3), got {_shown(value)}"
            )
            return (0.0, 0.0, 0.0)
        before = len(self.problems)
        amps = [self.number(where, item, 0.0, 100_000.0) for item in values]
        if len(self.problems) > before:
            del self.problems[before + 1 :]  # one message per key, not one per phase
        return (amps[0], amps[1], amps[2])

    def choice(self, where: str, value: Any, allowed: tuple[Any, ...]) -> Any:
        if value not in allowed or isinstance(value, bool):
            shown = ", ".join(str(option) for option in allowed)
            self.problems.append(f"{where}: must be one of {shown}, got {_shown(value)}")
            return allowed[0]
        return value

    def ws_url(self, where: str, value: Any) -> str:
        url = self.text(where, value)
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("ws", "wss") or not parts.hostname:
                self.problems.append(f"{where}: must be a ws:// or wss:// URL, got {url!r}")
            elif parts.password:
                # Credentials belong to the security-profile settings of a later issue; a
                # URL with a password would end up in logs.
                self.problems.append(f"{where}: must not contain a password")
        return url


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
