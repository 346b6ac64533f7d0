"""Every `evgw` subcommand has a --help naming its options, and the exit codes are the ones the
CLI's docstring and the README promise (0 done, 1 runtime failure, 2 usage or configuration
error), as a script sees them from a subprocess."""

from __future__ import annotations

import argparse
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, build_parser, main

EXAMPLE = Path(__file__).parents[1] / "examples" / "depot.toml"


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:  # argparse offers no public walk of its subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("evgw has no subcommands")


SUBCOMMANDS = _subcommands()


def test_the_documented_subcommands_exist() -> None:
    assert {"run", "demo", "check-config", "simulate"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help_naming_its_options(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([name, "--help"])
    assert exited.value.code == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"usage: evgw {name}")
    subparser = SUBCOMMANDS[name]
    assert subparser.description, f"evgw {name} has no description"
    for action in subparser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            names = list(action.choices)  # nested subcommands: each named in the help
        else:
            names = list(action.option_strings) or [str(action.metavar or action.dest)]
        for option in names:
            assert str(option) in out, (name, option)
        if not isinstance(action, argparse._HelpAction):
            assert action.help, f"evgw {name} {names[0]} has no help text"


def _evgw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,  # a bound against a hang, not a timing assertion
    )


def test_exit_codes_as_a_script_sees_them(tmp_path: Path) -> None:
    valid = _evgw("check-config", str(EXAMPLE))
    assert valid.returncode == EXIT_OK, valid.stderr
    assert "valid:" in valid.stdout

    usage = _evgw("check-config", "--no-such-option", str(EXAMPLE))
    assert usage.returncode == EXIT_USAGE
    assert "unrecognized arguments: --no-such-option" in usage.stderr

    missing = _evgw("check-config", str(tmp_path / "missing.toml"))
    assert missing.returncode == EXIT_USAGE
    assert "cannot read: No such file or directory" in missing.stderr

    # A valid configuration whose store cannot be opened: a runtime failure, not the
    # configuration's fault as far as check-config can tell.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's directory should be", encoding="utf-8")
    config = tmp_path / "evgw.toml"
    config.write_text(
        f'[gateway]\nstore = "{blocked}/evgw.sqlite3"\n'
        '[upstream]\nurl = "ws://127.0.0.1:9/ocpp"\n'
        '[[chargers]]\nid = "CP-1"\nhost = "127.0.0.1"\nport = 9\n',
        encoding="utf-8",
    )
    assert _evgw("check-config", str(config)).returncode == EXIT_OK
    failed = _evgw("run", "--config", str(config))
    assert failed.returncode == EXIT_FAILURE, failed.stderr
    assert "evgw: store error:" in failed.stderr


def test_run_raises_the_open_file_limit_for_a_large_site(tmp_path: Path) -> None:
    """Started with a low soft limit (256; hard 4096), `evgw run` raises its soft limit to the
    hard one: 500 chargers on their own connections need about 1000 descriptors."""
    config = tmp_path / "evgw.toml"
    config.write_text(
        f'[gateway]\nstore = "{tmp_path / "evgw.sqlite3"}"\nlog_level = "INFO"\n'
        '[upstream]\nurl = "ws://127.0.0.1:9/ocpp"\n'
        '[[chargers]]\nid = "CP-1"\nhost = "127.0.0.1"\nport = 9\n',
        encoding="utf-8",
    )

    _, hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = 4096 if hard_now == resource.RLIM_INFINITY else min(4096, hard_now)

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=low_limit,  # only a setrlimit between fork and exec
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # until the gateway is up; a bound is the timeout below
            if "gateway running" in line:
                break
        limits = Path(f"/proc/{process.pid}/limits").read_text(encoding="utf-8")
        (open_files,) = [row for row in limits.splitlines() if row.startswith("Max open files")]
        soft, hard_shown = open_files.split()[3:5]
        assert (soft, hard_shown) == (str(hard), str(hard))
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == EXIT_OK, errors
