"""The diagnostics bundle: one tar.gz with what a support engineer needs to understand a
site, without a secret in it.

Members (under `evgw-diagnostics/`):

- `manifest.json`: versions (evgw, Python, platform, SQLite, key libraries), when and how it
  was made, the members, and any problem met while collecting;
- `config.json`: the configuration with every secret removed (`gateway.diagnostics.scrub`);
- `chargers.json`: per charger its status, last reading, session, setpoints and balancing
  reason (running gateway only);
- `alarms.json`: active alarms and the latest ones; `charger_history.json`: uptime over 30
  days, faults, the latest offline and fault episodes;
- `ocpp.json`: per station its connection, registration, queue depth and frame counters
  (the offline bundle: queue depths from the store); `metrics.txt`: the Prometheus
  exposition (running gateway only);
- `logs/`: the `[gateway] log_file` and its rotated files (their newest `LOG_BYTES_LIMIT`
  bytes), else the records kept in memory (`logs/recent.jsonl`); `errors.jsonl`: the
  recent warnings and errors.

Every text member has every secret value blanked out, whatever produced it. Identifiers of
drivers (RFID tags) and message payloads are left out as personal data.

`build_diagnostics_bundle(gateway)` serves the local API and OCPP GetDiagnostics/GetLog;
`build_offline_diagnostics_bundle(config_file)` serves `evgw diagnostics` when no gateway
runs; `fetch_diagnostics_bundle(url, token)` asks a running one through its API.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import io
import json
import logging
import platform
import sqlite3
import sys
import tarfile
import time
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gateway import __version__
from gateway.config import ConfigError, GatewayConfig, parse_config
from gateway.diagnostics.scrub import blank_out, scrubbed, secret_values
from gateway.monitoring.alarms import read_alarms
from gateway.monitoring.history import DEFAULT_WINDOW_S, read_episodes, uptime_summary
from gateway.monitoring.log_records import log_files, recent_logs
from gateway.mqtt import MqttCharger
from gateway.store import Store, StoreError

if TYPE_CHECKING:
    from gateway.runtime import Gateway

logger = logging.getLogger(__name__)

ROOT: Final = "evgw-diagnostics"
RUNNING: Final = "running gateway"
ERRORS_IN_BUNDLE: Final = 2000
LOG_BYTES_LIMIT: Final = 16_000_000
"""At most this much of the log files goes in (their newest part): a bundle must upload
over a depot's mobile uplink to a central system's FTP server in minutes, and 16 MB of JSON
lines compress to about 2 MB."""
ALARMS_IN_BUNDLE: Final = 500
EPISODES_IN_BUNDLE: Final = 500
LIBRARIES: Final = (
    "aiohttp",
    "orjson",
    "paho-mqtt",
    "prometheus-client",
    "pymodbus",
    "pyserial",
    "uvloop",
    "websockets",
)
API_DIAGNOSTICS_PATH: Final = "/api/v1/diagnostics"
FETCH_TIMEOUT_S: Final = 120.0
"""Building a bundle on a busy edge box (reading and compressing the logs) takes seconds;
two minutes leave room for a slow link."""


class DiagnosticsError(Exception):
    """A bundle could not be obtained (the running gateway's API refused or is unreachable)."""


async def build_diagnostics_bundle(gateway: Gateway) -> bytes:
    """The bundle of a running gateway (see the module docstring), as tar.gz bytes. Never
    raises for a part it cannot collect: the manifest names the problem instead."""
    problems: list[str] = []
    config = gateway.config
    members: dict[str, Any] = {
        "config.json": scrubbed(config),
        "chargers.json": _chargers(gateway),
        "alarms.json": {
            "active": [alarm.as_json() for alarm in gateway.alarms.active()],
            "history": [alarm.as_json() for alarm in gateway.alarms.history(ALARMS_IN_BUNDLE)],
        },
        "ocpp.json": _stations(gateway),
    }
    try:
        members["charger_history.json"] = {
            "window_s": DEFAULT_WINDOW_S,
            "uptime": [
                uptime.as_json()
                for uptime in await gateway.charger_history.summary(list(gateway.site.charger_ids))
            ],
            "episodes": [
                e.as_json()
                for e in await gateway.charger_history.episodes(None, EPISODES_IN_BUNDLE)
            ],
        }
    except Exception as error:
        problems.append(f"charger_history.json: {error}")
    try:
        members["metrics.txt"] = gateway.metrics.exposition().decode()
    except Exception as error:
        problems.append(f"metrics.txt: {error}")
    return await _finish(members, config, None, problems, source=RUNNING)


async def build_offline_diagnostics_bundle(config_file: Path | str) -> bytes:
    """The bundle from a configuration file and its store alone (no gateway running, or
    none reachable): configuration, alarm and charger history, queue depths, log files.
    A configuration that does not load (a secret's environment variable unset in an
    operator's shell) still gives a bundle, from the file's own keys. Raises `ConfigError`
    only when the file cannot be read or is not TOML."""
    path = Path(config_file)
    try:
        document = tomllib.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    except OSError as error:
        raise ConfigError([f"cannot read: {error.strerror or error}"], str(path)) from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"not valid TOML: {error}"], str(path)) from error
    problems: list[str] = []
    config: GatewayConfig | None = None
    try:
        config = parse_config(document, source=str(path))
    except ConfigError as error:
        problems.extend(f"config: {problem}" for problem in error.problems)
    members: dict[str, Any] = {
        "config.json": scrubbed(config if config is not None else document),
    }
    gateway_table = document.get("gateway")
    raw_store = gateway_table.get("store") if isinstance(gateway_table, Mapping) else None
    store_path = (
        config.gateway.store
        if config is not None
        else Path(raw_store if isinstance(raw_store, str) else "evgw.sqlite3")
    )
    if not store_path.is_absolute() and not store_path.exists():
        store_path = path.parent / store_path
    charger_ids = _configured_charger_ids(config, document)
    if store_path.exists():
        await _from_store(store_path, charger_ids, members, problems)
    else:
        problems.append(f"store: {store_path} does not exist (the gateway never ran here?)")
    return await _finish(members, config, document, problems, source=f"offline from {path}")


async def fetch_diagnostics_bundle(url: str, token: str) -> bytes:
    """The bundle of the gateway whose local API is at `url` (`http://host:port`), asked
    with an admin `token`. Raises `DiagnosticsError` saying what went wrong (never with
    the token)."""
    import aiohttp  # only the command line needs the HTTP client

    target = url.rstrip("/") + API_DIAGNOSTICS_PATH
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as client,
            client.get(target, headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            body = await response.read()
            if response.status != 200:
                text = body[:300].decode("utf-8", "replace").strip()
                raise DiagnosticsError(f"{target}: HTTP {response.status}: {text}")
            return body
    except aiohttp.ClientError as error:
        raise DiagnosticsError(f"{target}: {error}") from error
    except TimeoutError as error:
        raise DiagnosticsError(f"{target}: no answer within {FETCH_TIMEOUT_S:g} s") from error


# --- collecting ---------------------------------------------------------------------------


def _chargers(gateway: Gateway) -> list[dict[str, Any]]:
    site = gateway.site
    sections = {charger.id: charger for charger in gateway.config.chargers}
    chargers: list[dict[str, Any]] = []
    for charger_id in site.charger_ids:
        connector = site.connector(charger_id)
        reading = connector.reading
        session = connector.session
        entry: dict[str, Any] = {
            "id": charger_id,
            "transport": sections[charger_id].transport if charger_id in sections else None,
            "online": connector.online,
            "status": None if connector.status is None else str(connector.status),
            "allocated_current_a": connector.allocated_current_a,
            "reading": None
            if reading is None
            else {
                "cp_state": str(reading.cp_state),
                "enabled": reading.enabled,
                "current_a": list(reading.current_a),
                "voltage_v": list(reading.voltage_v),
                "power_w": reading.power_w,
                "energy_wh": reading.energy_wh,
                "setpoint_a": reading.setpoint_a,
                "error_code": reading.error_code,
                "ocpp_error_code": str(reading.ocpp_error_code),
            },
            "session": None
            if session is None
            else {
                "id": session.id,
                "origin": str(session.origin),
                "started_at": session.started_at.isoformat(),
                "meter_start_wh": session.meter_start_wh,
                "upstream_transaction_id": session.upstream_transaction_id,
            },
        }
        if gateway.balancing is not None and charger_id in gateway.balancing.controller.chargers:
            status = gateway.balancing.status(charger_id)
            entry["balancing"] = {
                "setpoint_a": status.setpoint_a,
                "target_a": status.target_a,
                "reason": status.reason,
            }
        driver = gateway.southbound.drivers.get(charger_id)
        if isinstance(driver, MqttCharger):
            entry["mqtt"] = {"online": driver.online, "malformed": dict(driver.malformed)}
        chargers.append(entry)
    return chargers


def _stations(gateway: Gateway) -> list[dict[str, Any]]:
    stations: list[dict[str, Any]] = []
    for version, group in (("1.6", gateway.stations), ("2.0.1", gateway.stations_201)):
        for charger_id, station in group.items():
            entry: dict[str, Any] = {
                "charger_id": charger_id,
                "ocpp_version": version,
                "url": station.connection.url,
                "connected": station.connection.connected,
                "accepted": station.accepted,
                "queue_depth": None,
            }
            with contextlib.suppress(RuntimeError):  # not running: no queue loaded
                messages = station.outbox.messages
                entry["queue_depth"] = len(messages)
                # Actions and times only: payloads carry drivers' identifiers.
                entry["queue"] = [
                    {
                        "seq": m.seq,
                        "action": m.action,
                        "queued_at": m.queued_at,
                        "failures": m.failures,
                    }
                    for m in messages[:50]
                ]
            stats = station.connection.stats
            entry["frames"] = {
                "sent": _tally(stats.sent),
                "received": _tally(stats.received),
                "errors": _tally(stats.errors),
            }
            stations.append(entry)
    return stations


def _tally(counter: Mapping[tuple[str, str], int]) -> dict[str, int]:
    return {f"{action or '-'} {kind}": count for (action, kind), count in sorted(counter.items())}


def _configured_charger_ids(config: GatewayConfig | None, document: Mapping[str, Any]) -> list[str]:
    if config is not None:
        return [charger.id for charger in config.chargers]
    raw = document.get("chargers")
    if not isinstance(raw, list):
        return []
    return [t["id"] for t in raw if isinstance(t, Mapping) and isinstance(t.get("id"), str)]


async def _from_store(
    store_path: Path, charger_ids: list[str], members: dict[str, Any], problems: list[str]
) -> None:
    try:
        store = await Store.open(store_path)
    except (StoreError, OSError) as error:
        problems.append(f"store: {error}")
        return
    try:
        try:
            alarms = await read_alarms(store, ALARMS_IN_BUNDLE)
            members["alarms.json"] = {
                # Not cleared when the gateway last ran (it clears them at its next start).
                "uncleared": [a.as_json() for a in alarms if a.active],
                "history": [a.as_json() for a in alarms],
            }
            members["charger_history.json"] = {
                "window_s": DEFAULT_WINDOW_S,
                "uptime": [
                    u.as_json()
                    for u in await uptime_summary(
                        store, charger_ids or None, window_s=DEFAULT_WINDOW_S, now=datetime.now(UTC)
                    )
                ],
                "episodes": [e.as_json() for e in await read_episodes(store, None, 500)],
            }
        except (sqlite3.Error, StoreError) as error:
            problems.append(f"store: monitoring history: {error}")
        stations = []
        for charger_id in charger_ids:
            queued = await store.outbox(charger_id)
            stations.append(
                {
                    "charger_id": charger_id,
                    "queue_depth": len(queued),
                    "queue": [
                        {
                            "seq": m.seq,
                            "action": m.action,
                            "queued_at": m.queued_at,
                            "failures": m.failures,
                        }
                        for m in queued[:50]
                    ],
                }
            )
        members["ocpp.json"] = stations
        open_sessions = await store.open_sessions()
        members["sessions.json"] = {
            "open": [
                {
                    "id": s.id,
                    "charger_id": s.charger_id,
                    "started_at": s.started_at.isoformat(),
                    "meter_start_wh": s.meter_start_wh,
                }
                for s in open_sessions
            ]
        }
    except (sqlite3.Error, StoreError) as error:
        problems.append(f"store: {error}")
    finally:
        await store.close()


# --- packing ------------------------------------------------------------------------------


async def _finish(
    members: dict[str, Any],
    config: GatewayConfig | None,
    document: Mapping[str, Any] | None,
    problems: list[str],
    *,
    source: str,
) -> bytes:
    secrets = secret_values(config) if config is not None else set()
    if document is not None:
        secrets |= secret_values(document)
    log_file, backups = _log_file(config, document)
    recent = recent_logs()
    running = source == RUNNING
    logs: dict[str, bytes] = {}
    if log_file is not None:
        try:
            logs = await asyncio.to_thread(_read_logs, log_file, backups)
        except OSError as error:
            problems.append(f"logs: {log_file}: {error.strerror or error}")
        if not logs:
            problems.append(f"logs: nothing in {log_file}")
    if running:
        # This process's own records: the gateway's.
        members["errors.jsonl"] = "".join(f"{line}\n" for line in recent.lines(logging.WARNING))
        if not logs:
            logs = {"recent.jsonl": "".join(f"{line}\n" for line in recent.lines()).encode()}
    else:
        members["errors.jsonl"] = _warnings_in(logs)
    members["manifest.json"] = {
        "created_at": datetime.now(UTC).isoformat(),
        "source": source,
        "versions": _versions(),
        "members": sorted([*members, *(f"logs/{name}" for name in logs)]),
        "problems": problems,
    }
    return await asyncio.to_thread(_pack, members, logs, secrets)


def _log_file(
    config: GatewayConfig | None, document: Mapping[str, Any] | None
) -> tuple[Path | None, int]:
    if config is not None:
        return config.gateway.log_file, config.gateway.log_file_backups
    table = document.get("gateway") if document is not None else None
    if isinstance(table, Mapping) and isinstance(table.get("log_file"), str):
        backups = table.get("log_file_backups", 5)
        return Path(table["log_file"]), backups if isinstance(backups, int) else 5
    return None, 0


def _read_logs(path: Path, backups: int) -> dict[str, bytes]:
    """The newest `LOG_BYTES_LIMIT` bytes of the log and its rotated files, by file name."""
    budget = LOG_BYTES_LIMIT
    found: dict[str, bytes] = {}
    for file in reversed(log_files(path, backups)):  # newest first
        if budget <= 0:
            break
        with file.open("rb") as stream:
            size = stream.seek(0, io.SEEK_END)
            stream.seek(max(0, size - budget))
            data = stream.read(budget)
        if size > len(data):
            # Cut at a line start: a half record would not parse.
            data = data[data.find(b"\n") + 1 :]
        budget -= len(data)
        found[file.name] = data
    return found


def _warnings_in(logs: Mapping[str, bytes]) -> str:
    """The latest warning and error lines of JSON-lines log files (oldest file first)."""
    found: list[str] = []
    for data in reversed(list(logs.values())):
        for line in data.decode("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(line).get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    found.append(line)
    return "".join(f"{line}\n" for line in found[-ERRORS_IN_BUNDLE:])


def _versions() -> dict[str, Any]:
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            libraries[name] = None
    return {
        "evgw": __version__,
        "python": sys.version,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": libraries,
    }


def _pack(members: Mapping[str, Any], logs: Mapping[str, bytes], secrets: set[str]) -> bytes:
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"{ROOT}/{name}")
            info.size = len(data)
            info.mtime = int(now)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))

        for name, content in sorted(members.items()):
            text = (
                content
                if isinstance(content, str)
                else json.dumps(content, indent=2, ensure_ascii=False, default=str) + "\n"
            )
            add(name, blank_out(text, secrets).encode())
        for name, data in logs.items():
            text = data.decode("utf-8", "replace")
            add(f"logs/{name}", blank_out(text, secrets).encode())
    return buffer.getvalue()
