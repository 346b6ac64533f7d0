"""The diagnostics bundle of a running gateway (over real simulators, a real central system
and the real store), from a configuration file alone, and through `evgw diagnostics` as a
subprocess (offline, and from the running gateway's local API over loopback HTTP)."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.diagnostics.bundle import build_diagnostics_bundle, build_offline_diagnostics_bundle
from gateway.monitoring.alarms import AlarmKind
from gateway.monitoring.log_records import rotating_file_handler
from tests.monitoring.site import SECRET_FILE_TOKEN, SECRET_TOKEN, monitored_site, until

SECRETS = (SECRET_TOKEN, SECRET_FILE_TOKEN)
ROOT = "evgw-diagnostics/"


def unpack(bundle: bytes) -> dict[str, bytes]:
    # The whole decompressed stream (names, headers, contents) holds no secret.
    with tarfile.open(fileobj=io.BytesIO(bundle), mode="r:gz") as raw:
        members = {
            m.name.removeprefix(ROOT): raw.extractfile(m).read()  # type: ignore[union-attr]
            for m in raw.getmembers()
        }
    stream = gzip.decompress(bundle)
    for secret in SECRETS:
        assert secret.encode() not in stream, secret
        assert secret.encode() not in bundle
    return members


def as_json(members: dict[str, bytes], name: str) -> Any:
    return json.loads(members[name])


async def test_the_bundle_of_a_running_gateway(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        await site.chargers["CP-GENERIC"].stop()
        await until(
            lambda: any(a.kind is AlarmKind.CHARGER_OFFLINE for a in gateway.alarms.active()),
            "an offline alarm",
        )
        # A careless log line with a secret in it: the bundle must still not carry it.
        logging.getLogger("gateway.test").warning(
            "leaked %s", SECRET_TOKEN, extra={"token_in_field": SECRET_FILE_TOKEN}
        )
        bundle = await build_diagnostics_bundle(gateway)

    members = unpack(bundle)
    assert {
        "manifest.json",
        "config.json",
        "chargers.json",
        "alarms.json",
        "charger_history.json",
        "ocpp.json",
        "metrics.txt",
        "errors.jsonl",
        "logs/recent.jsonl",
    } <= set(members)
    manifest = as_json(members, "manifest.json")
    assert manifest["source"] == "running gateway"
    assert manifest["versions"]["evgw"]
    assert manifest["versions"]["python"].startswith(f"{sys.version_info.major}.")
    assert manifest["versions"]["platform"]
    assert manifest["problems"] == []

    config = as_json(members, "config.json")
    users = config["api"]["users"]
    assert [u["token"] for u in users] == ["[removed]", "[removed]"]
    assert [u["name"] for u in users] == ["operator", "viewer"]
    assert config["chargers"][0]["id"] == "CP-KEBA"  # the rest is there

    chargers = {c["id"]: c for c in as_json(members, "chargers.json")}
    assert chargers["CP-KEBA"]["online"] is True
    assert chargers["CP-KEBA"]["reading"]["cp_state"] == "A"
    assert chargers["CP-GENERIC"]["online"] is False
    assert chargers["CP-GENERIC"]["status"] == "Unavailable"
    assert "reason" in chargers["CP-KEBA"]["balancing"]

    alarms = as_json(members, "alarms.json")
    assert [(a["kind"], a["source"]) for a in alarms["active"]] == [
        ("charger_offline", "CP-GENERIC")
    ]
    history = as_json(members, "charger_history.json")
    assert {u["charger_id"] for u in history["uptime"]} == {"CP-KEBA", "CP-GENERIC"}
    assert [e["kind"] for e in history["episodes"]] == ["offline"]

    stations = {s["charger_id"]: s for s in as_json(members, "ocpp.json")}
    assert stations["CP-KEBA"]["queue_depth"] == 0
    assert stations["CP-KEBA"]["frames"]["sent"]["BootNotification call"] >= 1
    assert stations["CP-KEBA"]["url"].endswith("/CP-KEBA")

    families = {f.name for f in text_string_to_metric_families(members["metrics.txt"].decode())}
    assert "evgw_charger_online" in families

    recent = [json.loads(line) for line in members["logs/recent.jsonl"].decode().splitlines()]
    leaked = [r for r in recent if r["message"].startswith("leaked")]
    assert leaked == [{**leaked[0], "message": "leaked [removed]", "token_in_field": "[removed]"}]
    errors = [json.loads(line) for line in members["errors.jsonl"].decode().splitlines()]
    assert errors
    assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in errors)
    assert any(e["message"] == "leaked [removed]" for e in errors)


async def test_the_bundle_takes_the_rotated_log_files(tmp_path: Path) -> None:
    log_file = tmp_path / "log" / "evgw.log"
    extra = f'log_file = "{log_file}"\nlog_file_max_bytes = 100000\nlog_file_backups = 2'
    handler = rotating_file_handler(log_file, max_bytes=100_000, backups=2)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        async with monitored_site(tmp_path, extra) as site:
            noisy = logging.getLogger("gateway.test.noise")
            for index in range(3000):  # about 400 kB: rotates past the two backups
                noisy.info("line %d of padding %s", index, "x" * 60, extra={"index": index})
            noisy.error("the secret %s slipped", SECRET_TOKEN)
            bundle = await build_diagnostics_bundle(site.gateway)
    finally:
        root.removeHandler(handler)
        handler.close()
        root.setLevel(previous)

    assert sorted(p.name for p in log_file.parent.iterdir()) == [
        "evgw.log",
        "evgw.log.1",
        "evgw.log.2",
    ]
    assert all(p.stat().st_size <= 100_000 for p in log_file.parent.iterdir())
    members = unpack(bundle)
    assert {"logs/evgw.log", "logs/evgw.log.1", "logs/evgw.log.2"} <= set(members)
    assert "logs/recent.jsonl" not in members
    for name in ("logs/evgw.log", "logs/evgw.log.1", "logs/evgw.log.2"):
        for line in members[name].decode().splitlines():
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "logger", "message"} <= set(record)
    newest = [json.loads(line) for line in members["logs/evgw.log"].decode().splitlines()]
    assert any(r["message"] == "the secret [removed] slipped" for r in newest)
    assert any(r.get("index") == 2999 for r in newest)


async def test_the_offline_bundle_reads_the_store_and_the_cli_writes_it(tmp_path: Path) -> None:
    async with monitored_site(tmp_path) as site:
        gateway = site.gateway
        await site.chargers["CP-GENERIC"].stop()
        await until(
            lambda: any(a.kind is AlarmKind.CHARGER_OFFLINE for a in gateway.alarms.active()),
            "an offline alarm",
        )
        config_file = site.config_file

        # From the running gateway's API, as an operator would: `evgw diagnostics --url`.
        assert gateway.api is not None
        from_api = tmp_path / "from-api.tar.gz"
        code, err = await evgw(
            "diagnostics",
            "--url",
            gateway.api.url,
            "--token",
            SECRET_TOKEN,
            "--output",
            str(from_api),
        )
        assert code == 0, err
        members = unpack(from_api.read_bytes())
        assert as_json(members, "manifest.json")["source"] == "running gateway"
        assert [a["kind"] for a in as_json(members, "alarms.json")["active"]] == ["charger_offline"]
        code, err = await evgw(
            "diagnostics", "--url", gateway.api.url, "--token", "wrong-token-0123456789"
        )
        assert code == 1, err
        assert "HTTP 401" in err
        assert "wrong-token" not in err

    # The gateway is gone: offline, from the configuration and its store.
    bundle = await build_offline_diagnostics_bundle(config_file)
    members = unpack(bundle)
    manifest = as_json(members, "manifest.json")
    assert manifest["source"].startswith("offline from")
    assert manifest["problems"] == []
    alarms = as_json(members, "alarms.json")
    assert [(a["kind"], a["source"]) for a in alarms["history"]] == [
        ("charger_offline", "CP-GENERIC")
    ]
    # Active when the gateway stopped: the next start re-evaluates it.
    assert [a["id"] for a in alarms["uncleared"]] == [alarms["history"][0]["id"]]
    assert {s["charger_id"]: s["queue_depth"] for s in as_json(members, "ocpp.json")} == {
        "CP-KEBA": 0,
        "CP-GENERIC": 0,
    }
    uptime = {u["charger_id"]: u for u in as_json(members, "charger_history.json")["uptime"]}
    assert uptime["CP-GENERIC"]["uptime_percent"] < 100.0
    assert as_json(members, "config.json")["api"]["users"][0]["token"] == "[removed]"

    output = tmp_path / "bundle.tar.gz"
    code, err = await evgw("diagnostics", "--config", str(config_file), "--output", str(output))
    assert code == 0, err
    assert f"wrote {output}" in err
    assert set(unpack(output.read_bytes())) == set(members)


async def test_an_offline_bundle_of_a_config_that_does_not_load_still_has_no_secret(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "site.toml"
    config_file.write_text(
        f"""
[gateway]
store = "{tmp_path / "missing.sqlite3"}"

[upstream]
url = "ws://127.0.0.1:9/ocpp"
security_profile = 1
password = "{SECRET_TOKEN}"

[[chargers]]
id = "CP-1"
host = "192.0.2.1"

[api]
[[api.users]]
name = "operator"
role = "admin"
token_env = "EVGW_TEST_UNSET_TOKEN_VARIABLE"
""",
        encoding="utf-8",
    )
    code, err = await evgw("diagnostics", "--config", str(config_file), "--output", "-", raw=True)
    assert code == 0, err
    members = unpack(err.encode("latin-1"))
    manifest = as_json(members, "manifest.json")
    # Named by its key; the variable's name goes too (a *_env value counts as secret).
    assert any(
        p.startswith("config: api.users[0].token_env: environment variable")
        for p in manifest["problems"]
    )
    assert any("does not exist" in p for p in manifest["problems"])
    config = as_json(members, "config.json")
    assert config["upstream"]["password"] == "[removed]"
    assert config["api"]["users"][0]["token_env"] == "[removed]"
    assert config["chargers"][0]["host"] == "192.0.2.1"


async def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, err = await evgw("diagnostics")
    assert code == 2
    assert "--config" in err
    env_free = {k: v for k, v in os.environ.items() if k != "EVGW_API_TOKEN"}
    code, err = await evgw("diagnostics", "--url", "http://127.0.0.1:9", env=env_free)
    assert code == 2
    assert "token" in err
    code, err = await evgw("diagnostics", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "cannot read" in err
    code, err = await evgw("diagnostics", "--url", "http://127.0.0.1:9", "--token", "x" * 20)
    assert code == 1
    assert "127.0.0.1:9" in err


async def evgw(*args: str, env: dict[str, str] | None = None, raw: bool = False) -> tuple[int, str]:
    """Run `python -m gateway ARGS`; (exit code, stderr), or stdout (as latin-1) when `raw`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    if raw:
        shown = out.decode("latin-1") if process.returncode == 0 else err.decode()
        return process.returncode, shown
    return process.returncode, err.decode()
