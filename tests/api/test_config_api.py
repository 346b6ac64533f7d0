"""The [api] section: users with roles and secrets from a value, the environment or a file;
no users is an error (an API without credentials would be open to anyone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, parse_config

TOKEN = "a-token-of-24-characters"


def document(api: Any) -> dict[str, Any]:
    return {
        "upstream": {"url": "ws://127.0.0.1:9000/ocpp"},
        "chargers": [{"id": "CP-1", "host": "127.0.0.1"}],
        "api": api,
    }


def problems(api: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(api))
    return caught.value.problems


def test_users_with_tokens_from_value_env_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVGW_TEST_API_TOKEN", "from-the-environment-0001")
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file-000000000001\n")
    config = parse_config(
        document(
            {
                "host": "0.0.0.0",
                "port": 8443,
                "users": [
                    {"name": "ops", "role": "admin", "token": TOKEN},
                    {"name": "wall", "role": "read", "token_env": "EVGW_TEST_API_TOKEN"},
                    {"name": "grafana", "role": "read", "token_file": str(token_file)},
                ],
            }
        )
    )
    assert config.api is not None
    assert (config.api.host, config.api.port) == ("0.0.0.0", 8443)
    assert [(u.name, u.role, u.token) for u in config.api.users] == [
        ("ops", "admin", TOKEN),
        ("wall", "read", "from-the-environment-0001"),
        ("grafana", "read", "from-a-file-000000000001"),
    ]
    assert TOKEN not in repr(config.api)


def test_defaults_and_no_api_without_the_section() -> None:
    config = parse_config(document({"users": [{"name": "ops", "role": "read", "token": TOKEN}]}))
    assert config.api is not None
    assert (config.api.host, config.api.port) == ("127.0.0.1", 8080)
    without = document(None)
    del without["api"]
    assert parse_config(without).api is None


def test_no_users_is_refused() -> None:
    assert problems({"host": "0.0.0.0"}) == [
        "api.users: at least one [[api.users]] table is required (an API without"
        " credentials would be open to anyone who reaches the port)"
    ]


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ({"users": [{"name": "a", "role": "root", "token": TOKEN}]}, "api.users[0].role: must be"),
        ({"users": [{"name": "a", "role": "read"}]}, "api.users[0].token: missing"),
        (
            {"users": [{"name": "a", "role": "read", "token": "short"}]},
            "api.users[0].token: must be at least 16 characters, got 5",
        ),
        (
            {"users": [{"name": "a", "role": "read", "token": TOKEN, "token_env": "X"}]},
            "api.users[0].token_env: give only one of token, token_env",
        ),
        (
            {
                "users": [
                    {"name": "a", "role": "read", "token": TOKEN},
                    {"name": "b", "role": "admin", "token": TOKEN},
                ]
            },
            "api.users[1].token: the same token as another user",
        ),
        ({"port": 70000, "users": []}, "api.port: must be an integer between 0 and 65535"),
        ({"listen": "x", "users": []}, "api.listen: unknown key"),
    ],
)
def test_bad_api_sections_name_the_key(api: dict[str, Any], expected: str) -> None:
    found = problems(api)
    assert any(problem.startswith(expected) for problem in found), found
    assert all("short" not in problem and TOKEN not in problem for problem in found)
