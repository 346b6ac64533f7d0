"""The `evgw` command line: usage and configuration errors exit 2."""

from __future__ import annotations

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
