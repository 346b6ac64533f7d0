"""The `evgw` command line: usage and configuration errors exit 2; a stop never hangs."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import EXIT_USAGE, main


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["demo", "--help"], ["run", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    for argv in ([], ["run"], ["demo", "--chargers", "0"], ["fly"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == EXIT_USAGE
    assert "usage: evgw" in capsys.readouterr().err


def test_configuration_error_exits_2_and_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "evgw.toml"
    config.write_text(
        '[upstream]\nurl = "ws://127.0.0.1:9/ocpp"\n[[chargers]]\nid = "CP-1"\nhost = "h"\n'
        'profile = "no-such-profile"\n',
        encoding="utf-8",
    )
    assert main(["run", "--config", str(config)]) == EXIT_USAGE
    assert "chargers[0].profile:" in capsys.readouterr().err
    assert main(["run", "--config", str(tmp_path / "missing.toml")]) == EXIT_USAGE


_STUBBORN = """
import asyncio, sys
import gateway.cli as cli

cli.SHUTDOWN_GRACE_S = 0.5
cli.configure_logging("WARNING")

async def swallow(times):
    # A child that ignores `times` cancellations, as a task hit by cpython#86296 would.
    ignored = 0
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            ignored += 1
            if ignored > times:
                raise

async def work():
    child = asyncio.create_task(swallow(int(sys.argv[1])), name="stubborn-child")
    print("ready", flush=True)
    await child

cli.run_until_signalled(work())
print("stopped", flush=True)
"""


@pytest.mark.parametrize(
    ("ignored", "exit_code", "logged"),
    [
        (1, 0, "cancelling every task"),  # the second stage cancels the child itself
        (1_000_000, 1, "exiting without clean-up"),  # never stops: exit rather than hang
    ],
)
def test_a_stop_that_hangs_escalates_and_never_hangs_the_process(
    ignored: int, exit_code: int, logged: str
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _STUBBORN, str(ignored)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    # A bound against a hung test, not a timing assertion.
    out, errors = process.communicate(timeout=60)
    assert process.returncode == exit_code, errors
    assert logged in errors
    assert "stubborn-child" in errors
    assert ("stopped" in out) == (exit_code == 0)


EXAMPLE = Path(__file__).parents[1] / "examples" / "depot.toml"


def test_check_config_accepts_the_depot_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "valid: 30 chargers (4 mqtt, 4 rtu, 6 rtu-over-tcp, 16 tcp), 1 meters, 3 circuits" in out


def test_check_config_names_every_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # A profile that does not exist, and phase switching on a charger that cannot switch.
    text = text.replace('profile = "abb-terra-ac"', 'profile = "abb-terra-dc"', 1)
    text = text.replace(
        'id = "DEPOT-A01"\nprofile = "keba-p30"',
        'id = "DEPOT-A01"\nprofile = "keba-p30"\nphase_switching = true',
    )
    config = tmp_path / "depot.toml"
    config.write_text(text, encoding="utf-8")
    assert main(["check-config", str(config)]) == EXIT_USAGE
    errors = capsys.readouterr().err
    assert f"configuration error: {config}:" in errors
    assert "chargers[6].profile: no charger profile named 'abb-terra-dc'" in errors
    # The profile check comes first: fix it, and the phase-switching one shows.
    config.write_text(text.replace("abb-terra-dc", "abb-terra-ac"), encoding="utf-8")
    assert main(["check-config", str(config)]) == EXIT_USAGE
    errors = capsys.readouterr().err
    assert "chargers[0].phase_switching: keba-p30 cannot switch phases" in errors
