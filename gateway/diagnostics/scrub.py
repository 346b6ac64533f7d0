"""Secrets out of what leaves the gateway: the configuration as JSON with every secret
removed, and every secret value blanked out of any other text (logs among them).

A value is secret when its configuration field says so (declared `field(repr=False)` or
with `metadata={"secret": True}`: how `gateway.config` declares passwords and tokens) or
when its key's name says so (password, token, secret, key, credential, ...), so a secret a
later section adds without the declaration is still caught by its name.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from pathlib import PurePath
from typing import Any, Final

REMOVED: Final = "[removed]"
SECRET_NAME: Final = re.compile(
    r"pass(word|phrase|wd)?|secret|token|credential|private|(^|_)key($|_)|auth_?key|api_?key",
    re.IGNORECASE,
)
"""Key names whose values are secret (or name where a secret is: `password_file`)."""


def secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def _secret_field(field: dataclasses.Field[Any]) -> bool:
    return field.repr is False or bool(field.metadata.get("secret")) or secret_name(field.name)


def scrubbed(value: Any) -> Any:
    """`value` (a config dataclass tree, or a parsed TOML document) as JSON-ready data with
    every secret replaced by "[removed]" (None stays None: "not set" is no secret)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: _blank(getattr(value, field.name))
            if _secret_field(field)
            else scrubbed(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {
            str(key): _blank(item) if secret_name(str(key)) else scrubbed(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrubbed(item) for item in value]
    return _plain(value)


def secret_values(value: Any) -> set[str]:
    """Every secret string in `value` (same rules as `scrubbed`): what `blank_out` removes
    from free text."""
    found: set[str] = set()
    _collect(value, found, secret=False)
    return {text for text in found if text}


def blank_out(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of every secret replaced by "[removed]" (longest first,
    so a secret containing another goes as a whole)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REMOVED)
    return text


def _collect(value: Any, found: set[str], *, secret: bool) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            _collect(getattr(value, field.name), found, secret=secret or _secret_field(field))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, found, secret=secret or secret_name(str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, found, secret=secret)
    elif secret and isinstance(value, str | PurePath):
        found.add(str(value))


def _blank(value: Any) -> Any:
    return None if value is None else REMOVED


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
