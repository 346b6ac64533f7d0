"""`evgw check-config` on broken configurations, as an installer runs it: each file in
`broken/` has exactly one problem, and its first line (`# expect: ...`) is the one line the
command must print for it, naming the key and the problem. An expectation ending in "..." is
matched as a prefix (for messages that list what is installed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BROKEN = Path(__file__).parent / "broken"
EXPECT = "# expect: "
UNSET_SECRET_ENV = "EVGW_TEST_UNSET_MQTT_PASSWORD"
"""The variable `missing-secret-env.toml` names; removed from the command's environment."""


def _expectation(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(EXPECT), f"{path.name}: first line must be '{EXPECT}<message>'"
    return first.removeprefix(EXPECT)


CASES = sorted(BROKEN.glob("*.toml"))
SECRET = re.compile(r'^\s*(?:\w*password|\w*token\w*)\s*=\s*"([^"]+)"', re.MULTILINE)


def test_there_is_a_broken_config_for_each_kind_of_problem() -> None:
    names = {path.stem for path in CASES}
    for kind in (
        "unknown-key",
        "wrong-type",
        "negative-current",
        "unknown-parent",
        "parent-cycle",
        "failsafe-over-fuse",
        "duplicate-charger-id",
        "duplicate-circuit-id",
        "bad-transport",
        "serial-bus-clash",
        "missing-secret-env",
        "unreadable-secret-file",
        "bad-time",
        "unknown-profile",
        "toml-syntax",
    ):
        assert kind in names


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_check_config_names_the_key_and_the_problem(path: Path) -> None:
    expected = _expectation(path)
    environment = {key: value for key, value in os.environ.items() if key != UNSET_SECRET_ENV}
    completed = subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,  # a bound against a hang, not a timing assertion
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    header, *problems = completed.stderr.splitlines()
    assert header == f"evgw: configuration error: {path}:"
    # One problem per file: one line, indented under the header.
    assert len(problems) == 1, problems
    line = problems[0]
    assert line.startswith("  ")
    if expected.endswith("..."):
        assert line[2:].startswith(expected.removesuffix("...")), line
    else:
        assert line[2:] == expected
    # A secret written literally in the file never reaches the output.
    for secret in SECRET.findall(path.read_text(encoding="utf-8")):
        assert secret not in completed.stderr
