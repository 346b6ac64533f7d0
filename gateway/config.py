"""The gateway's TOML configuration (`evgw run --config FILE`).

Format::

    [gateway]
    store = "/var/lib/evgw/evgw.sqlite3"   # SQLite file (created if missing)
    log_level = "INFO"                      # DEBUG, INFO, WARNING, ERROR

    [upstream]
    url = "ws://csms.example.com/ocpp"      # base URL; "/<charger id>" is appended
    ocpp_version = "1.6"                    # only 1.6 for now
    heartbeat_interval_s = 300              # until the central system sets one
    meter_value_sample_interval_s = 60      # MeterValueSampleInterval
    connection_timeout_s = 60               # ConnectionTimeOut: authorization waits for a plug

    [[chargers]]
    id = "CP-1"                             # charge point identity upstream
    profile = "generic"                     # register map, gateway/modbus/profiles/<name>.toml
    host = "192.0.2.10"
    port = 502
    unit_id = 1                             # default: the profile's
    poll_interval_s = 1.0
    max_current_a = 16.0
    phases = 3                              # 1 or 3
    vendor = "ACME"                         # BootNotification chargePointVendor (optional)
    model = "Wallbox 11"                    # chargePointModel (optional; default: profile)
    serial_number = "12345"                 # chargePointSerialNumber (optional)

Every key is checked; an unknown key is an error (a typo must not silently fall back to a
default). Errors name the key and the problem, e.g.
`chargers[2].port: must be an integer between 1 and 65535, got "abc"`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
OCPP_VERSIONS: Final = ("1.6",)
MAX_IDENTITY_LENGTH: Final = 48
"""OCPP 2.0.1 caps the identity at 48 characters (ocpp.md §2); held to already, so a charger's
identity survives the move to 2.0.1."""
VENDOR_MAX: Final = 20
MODEL_MAX: Final = 20
SERIAL_MAX: Final = 25
"""OCPP 1.6 BootNotification CiString lengths."""


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


@dataclass(frozen=True, slots=True)
class UpstreamSection:
    url: str
    ocpp_version: str = "1.6"
    heartbeat_interval_s: int = 300
    meter_value_sample_interval_s: int = 60
    connection_timeout_s: int = 60


@dataclass(frozen=True, slots=True)
class ChargerSection:
    id: str
    host: str
    profile: str = "generic"
    port: int = 502
    unit_id: int | None = None
    poll_interval_s: float = 1.0
    max_current_a: float = 16.0
    phases: int = 3
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    upstream: UpstreamSection
    chargers: tuple[ChargerSection, ...]
    gateway: GatewaySection = field(default_factory=GatewaySection)


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate a TOML file. Raises `ConfigError` (also for unreadable files)."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read: {error.strerror or error}"], str(path)) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"not valid TOML: {error}"], str(path)) from error
    return parse_config(document, source=str(path))


def parse_config(document: Mapping[str, Any], *, source: str = "configuration") -> GatewayConfig:
    """Validate an already parsed document. Raises `ConfigError` listing every problem."""
    problems: list[str] = []
    checker = _Checker(problems)
    checker.only_keys("", document, {"gateway", "upstream", "chargers"})

    gateway_table = checker.table("gateway", document.get("gateway", {}))
    checker.only_keys("gateway", gateway_table, {"store", "log_level"})
    gateway = GatewaySection(
        store=Path(checker.text("gateway.store", gateway_table.get("store", "evgw.sqlite3"))),
        log_level=checker.choice(
            "gateway.log_level", str(gateway_table.get("log_level", "INFO")).upper(), LOG_LEVELS
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
        },
    )
    upstream = UpstreamSection(
        url=checker.ws_url("upstream.url", upstream_table.get("url")),
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

    if problems:
        raise ConfigError(problems, source)
    return GatewayConfig(upstream=upstream, chargers=tuple(chargers), gateway=gateway)


_CHARGER_KEYS = frozenset(ChargerSection.__dataclass_fields__)


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
    return ChargerSection(
        id=identity,
        host=checker.text(f"{where}.host", table.get("host")),
        profile=checker.text(f"{where}.profile", table.get("profile", "generic")),
        port=checker.integer(f"{where}.port", table.get("port", 502), 1, 65535),
        unit_id=None if unit_id is None else checker.integer(f"{where}.unit_id", unit_id, 0, 255),
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
    )


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
                self.problems.append(f"{name}: unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, where: str, value: Any, *, required: bool = False) -> Mapping[str, Any]:
        if value is None:
            if required:
                self.problems.append(f"{where}: missing required table [{where}]")
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"{where}: must be a table, got {_shown(value)}")
            return {}
        return value

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
            self.problems.append(
                f"{where}: must be a number between {low:g} and {high:g}, got {_shown(value)}"
            )
            return low
        return float(value)

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
