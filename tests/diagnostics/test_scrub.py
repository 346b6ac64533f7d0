"""Secrets out of the configuration and out of free text."""

from __future__ import annotations

import tomllib

from gateway.config import parse_config
from gateway.diagnostics.scrub import REMOVED, blank_out, scrubbed, secret_values

DOCUMENT = """
[upstream]
url = "ws://csms.example/ocpp"
security_profile = 1
password = "0123456789abcdef0123456789abcdef"

[[chargers]]
id = "CP-1"
transport = "mqtt"
mqtt_style = "go-e"

[mqtt]
host = "broker.local"
username = "evgw"
password = "mqtt-password-2"

[api]
[[api.users]]
name = "operator"
role = "admin"
token = "api-token-3-abcdefghij"
"""


def test_every_secret_field_of_the_config_is_removed_and_the_rest_stays() -> None:
    config = parse_config(tomllib.loads(DOCUMENT))
    data = scrubbed(config)
    assert data["upstream"]["password"] == REMOVED
    assert data["mqtt"]["password"] == REMOVED
    assert data["api"]["users"][0]["token"] == REMOVED
    assert data["mqtt"]["username"] == "evgw"
    assert data["mqtt"]["cert_file"] is None  # unset is not a secret
    assert data["chargers"][0]["id"] == "CP-1"
    assert data["upstream"]["url"] == "ws://csms.example/ocpp"
    text = repr(data)
    for secret in ("0123456789abcdef0123456789abcdef", "mqtt-password-2", "api-token-3-abcdefghij"):
        assert secret not in text
    assert secret_values(config) >= {
        "0123456789abcdef0123456789abcdef",
        "mqtt-password-2",
        "api-token-3-abcdefghij",
    }


def test_secrets_are_found_by_key_name_in_plain_documents_too() -> None:
    document = {
        "future": {"api_key": "k-1", "client_secret": "s-2", "timeout_s": 5, "keepalive_s": 3},
        "list": [{"auth_token": "t-3", "name": "x"}],
    }
    data = scrubbed(document)
    assert data == {
        "future": {
            "api_key": REMOVED,
            "client_secret": REMOVED,
            "timeout_s": 5,
            "keepalive_s": 3,
        },
        "list": [{"auth_token": REMOVED, "name": "x"}],
    }
    assert secret_values(document) == {"k-1", "s-2", "t-3"}


def test_blank_out_removes_every_occurrence_longest_first() -> None:
    text = 'login with "abc" then "abcdef" and abcdef again'
    assert blank_out(text, {"abc", "abcdef"}) == (
        f'login with "{REMOVED}" then "{REMOVED}" and {REMOVED} again'
    )
    assert blank_out("nothing here", {"zzz"}) == "nothing here"
