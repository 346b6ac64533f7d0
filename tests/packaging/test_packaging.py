"""The installation files: the systemd unit (hardening, places, stop timing consistent with
the CLI's shutdown; `systemd-analyze verify` where systemd is installed) and the Dockerfile
(multi-stage, non-root, the standard places, a health check). No container engine runs here:
the Dockerfile is checked as text."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import SHUTDOWN_GRACE_S
from gateway.shutdown import FAILSAFE_WRITE_BUDGET_S

ROOT = Path(__file__).parents[2]
UNIT = ROOT / "packaging" / "systemd" / "evgw.service"
DOCKERFILE = ROOT / "Dockerfile"
CONFIG = "/etc/evgw/evgw.toml"


def _unit() -> dict[str, dict[str, list[str]]]:
    """Section → key → values (a key may repeat, e.g. DeviceAllow=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"a setting before any section: {line!r}"
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_is_hardened() -> None:
    service = _unit()["Service"]
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
    }
    for key, value in expected.items():
        assert service.get(key) == [value], key
    families = set(service["RestrictAddressFamilies"][0].split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    # Not root, and on the serial adapters' group.
    assert service["User"] == ["evgw"]
    assert service["SupplementaryGroups"] == ["dialout"]
    assert "char-ttyUSB rw" in service["DeviceAllow"]
    # PrivateDevices= would hide the RS-485 adapters.
    assert "PrivateDevices" not in service


def test_the_unit_uses_the_standard_places() -> None:
    service = _unit()["Service"]
    assert service["StateDirectory"] == ["evgw"]
    assert service["ConfigurationDirectory"] == ["evgw"]
    assert service["WorkingDirectory"] == ["/var/lib/evgw"]
    (start,) = service["ExecStart"]
    assert start.split()[1:] == ["run", "--config", CONFIG]
    (check,) = service["ExecStartPre"]
    assert check.split()[1:] == ["check-config", CONFIG]
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_unit_waits_for_the_whole_clean_stop() -> None:
    service = _unit()["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["Restart"] == ["on-failure"]
    # A configuration error (exit 2) is not retried for ever.
    assert service["RestartPreventExitStatus"] == ["2"]
    timeout = float(service["TimeoutStopSec"][0])
    # The CLI gives the stop SHUTDOWN_GRACE_S, then cancels everything and waits as long again
    # before it exits by itself; systemd's SIGKILL must come only after that.
    assert timeout > 2 * SHUTDOWN_GRACE_S
    # The failsafe writes (and the cancelling of late ones) fit in the first stage.
    assert 2 * FAILSAFE_WRITE_BUDGET_S < SHUTDOWN_GRACE_S


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this Python's evgw.
    evgw = Path(sys.executable).parent / "evgw"
    if not evgw.exists():
        evgw = Path(shutil.which("evgw") or sys.executable)
    unit = tmp_path / "evgw.service"
    unit.write_text(
        UNIT.read_text(encoding="utf-8").replace("/opt/evgw/bin/evgw", str(evgw)),
        encoding="utf-8",
    )
    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stderr
    # Unknown or misspelt keys are only warnings to systemd: none may be printed.
    assert verified.stderr.strip() == "", verified.stderr


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word, _, rest = stripped.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_builds_in_stages_and_runs_as_non_root() -> None:
    instructions = _instructions()
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2
    assert any("maturin build" in rest for word, rest in instructions if word == "RUN")
    # The runtime stage: everything after the last FROM.
    last = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    runtime = instructions[last:]
    assert runtime[0][1] == "${PYTHON_IMAGE}"
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in instructions
    users = [rest for word, rest in runtime if word == "USER"]
    assert users == ["evgw"]
    assert ("VOLUME", '["/var/lib/evgw"]') in runtime
    assert ("STOPSIGNAL", "SIGTERM") in runtime
    assert any(word == "HEALTHCHECK" and "evgw status" in rest for word, rest in runtime)
    assert ("CMD", f'["run", "--config", "{CONFIG}"]') in runtime
    assert any("STATE_DIRECTORY=/var/lib/evgw" in rest for word, rest in runtime if word == "ENV")
    # Every file the image copies exists in the repository.
    for word, rest in instructions:
        if word == "COPY" and "--from" not in rest:
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), source
