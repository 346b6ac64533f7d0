"""Configuration errors name the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config

VALID = """
[gateway]
store = "data/evgw.sqlite3"

[upstream]
url = "ws://csms.example.com/ocpp"

[[chargers]]
id = "CP-1"
host = "192.0.2.10"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "evgw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_configuration_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.upstream.ocpp_version == "1.6"
    assert config.upstream.meter_value_sample_interval_s == 60
    (charger,) = config.chargers
    assert charger.port == 502
    assert charger.profile == "generic"
    assert config.gateway.store == Path("data/evgw.sqlite3")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[[chargers]]\nid = "CP-2"\nhost = "h"\n[[chargers]]\nid = "CP-3"\nhost = "h"\n'
            'port = "abc"\n',
            'chargers[2].port: must be an integer between 1 and 65535, got "abc"',
        ),
        (
            '[[chargers]]\nid = "CP-2"\nhost = "h"\nphases = 2\n',
            "chargers[1].phases: must be one of 1, 3, got 2",
        ),
        (
            '[[chargers]]\nid = "CP-2"\nhost = "h"\ncolour = "red"\n',
            "chargers[1].colour: unknown key",
        ),
        ('[[chargers]]\nid = "CP-1"\nhost = "h"\n', "chargers[1].id: duplicate charger id 'CP-1'"),
        ('[[chargers]]\nid = "CP-2"\n', "chargers[1].host: missing required key"),
        (
            '[[chargers]]\nid = "CP-2"\nhost = "h"\nmax_current_a = 3\n',
            "chargers[1].max_current_a: must be a number between 6 and 1000, got 3",
        ),
    ],
)
def test_errors_name_key_and_problem(tmp_path: Path, extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, VALID + extra))
    assert any(problem.startswith(expected) for problem in raised.value.problems), (
        raised.value.problems
    )


def test_upstream_problems(tmp_path: Path) -> None:
    text = VALID.replace(
        'url = "ws://csms.example.com/ocpp"', 'url = "http://x"\nocpp_version = "2.1"'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text))
    assert raised.value.problems == [
        "upstream.url: must be a ws:// or wss:// URL, got 'http://x'",
        'upstream.ocpp_version: must be one of 1.6, 2.0.1, got "2.1"',
    ]


def test_ocpp_version_upstream_and_per_charger(tmp_path: Path) -> None:
    text = (
        VALID.replace(
            'url = "ws://csms.example.com/ocpp"', 'url = "ws://x/ocpp"\nocpp_version = "2.0.1"'
        )
        + '[[chargers]]\nid = "CP-2"\nhost = "h"\nocpp_version = "1.6"\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.upstream.ocpp_version == "2.0.1"
    assert [charger.ocpp_version for charger in config.chargers] == [None, "1.6"]


def test_per_charger_ocpp_version_must_be_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, VALID + 'ocpp_version = "2.1"\n'))
    assert raised.value.problems == [
        'chargers[0].ocpp_version: must be one of 1.6, 2.0.1, got "2.1"'
    ]


def test_missing_sections_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "[gateway]\n"))
    assert "upstream: missing required table [upstream]" in raised.value.problems
    assert "chargers: at least one [[chargers]] table is required" in raised.value.problems
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[gateway\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_readme_example_is_a_valid_configuration(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_config(write(tmp_path, example))
    assert [charger.id for charger in config.chargers] == ["DEPOT1-CP01"]
    assert config.chargers[0].profile == "keba-p30"
    assert config.upstream.url == "wss://csms.example.com/ocpp"
