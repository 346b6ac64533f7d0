"""`[gateway] store` defaults to the state directory systemd (StateDirectory=) or the container
image names in $STATE_DIRECTORY, else to the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config

MINIMAL = {
    "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
    "chargers": [{"id": "CP-1", "host": "127.0.0.1"}],
}


@pytest.mark.parametrize(
    ("state_directory", "store"),
    [
        ("/var/lib/evgw", Path("/var/lib/evgw/evgw.sqlite3")),
        # systemd joins several StateDirectory= entries with ':'; the first is the gateway's.
        ("/var/lib/evgw:/var/lib/other", Path("/var/lib/evgw/evgw.sqlite3")),
        (None, Path("evgw.sqlite3")),
    ],
)
def test_the_store_defaults_to_the_state_directory(
    monkeypatch: pytest.MonkeyPatch, state_directory: str | None, store: Path
) -> None:
    if state_directory is None:
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    else:
        monkeypatch.setenv("STATE_DIRECTORY", state_directory)
    assert parse_config(MINIMAL).gateway.store == store


def test_a_configured_store_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/evgw")
    document = {**MINIMAL, "gateway": {"store": "/srv/evgw/site.sqlite3"}}
    assert parse_config(document).gateway.store == Path("/srv/evgw/site.sqlite3")
