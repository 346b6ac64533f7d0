"""`docs/configuration.md` documents every key the configuration accepts, and nothing else.

The accepted keys are not listed by hand here: they are read from the parser itself
(`gateway.config.parse_config`), by giving each table a key it cannot know and reading the
"allowed: ..." list of its error message, section by section and into nested tables. So a key
added to the code without a row in the reference fails this test, and so does a row for a key
the code no longer takes. The reference's tables are the other side: under each heading
`` ## `[section]` `` or `` ## `[[section]]` `` (or deeper, `` ### `[section.sub]` ``), the
first column of each table row names a key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from gateway.config import ConfigError, GatewayConfig, parse_config

REFERENCE = Path(__file__).parents[1] / "docs" / "configuration.md"
PROBE = "zz_not_a_key"
"""A key no table accepts, and too unlike any real key for a "did you mean" hint."""
ALLOWED = re.compile(r": unknown (?:key|field) \(allowed: (?P<keys>[^)]*)\)$")
CHARGER_ID = "CP-1"
BASE: dict[str, Any] = {
    "upstream": {"url": "ws://127.0.0.1:9/ocpp"},
    "chargers": [{"id": CHARGER_ID, "host": "127.0.0.1"}],
}
"""A valid configuration the probes go into, so that tables keyed by a charger's id (such as
`[ocpi.chargers.<id>]`) have a charger to name."""

Kind = Literal["table", "array", "map"]
"""A table, an array of tables, or a table of tables keyed by a charger's id."""
Segment = tuple[str, Kind]


def _document(path: tuple[Segment, ...], leaf: dict[str, Any]) -> dict[str, Any]:
    value: Any = leaf
    for name, kind in reversed(path):
        inner = {"table": value, "array": [value], "map": {CHARGER_ID: value}}[kind]
        value = {name: inner}
    return {**BASE, **value}


def _where(path: tuple[Segment, ...]) -> str:
    suffix = {"table": "", "array": "[0]", "map": f".{CHARGER_ID}"}
    return ".".join(f"{name}{suffix[kind]}" for name, kind in path)


def _heading(path: tuple[Segment, ...]) -> str:
    name = ".".join(f"{name}.<id>" if kind == "map" else name for name, kind in path)
    return f"[[{name}]]" if path[-1][1] == "array" else f"[{name}]"


def _allowed(path: tuple[Segment, ...]) -> set[str] | None:
    """The keys the table at `path` accepts, from the parser's unknown-key message; None when
    no such table exists there."""
    where = _where(path)
    unknown = f"{where}.{PROBE}" if where else PROBE
    try:
        parse_config(_document(path, {PROBE: 1}))
    except ConfigError as error:
        for problem in error.problems:
            if problem.startswith(f"{unknown}: unknown "):
                match = ALLOWED.search(problem)
                assert match, f"no list of allowed keys in {problem!r}"
                return set(match["keys"].split(", "))
    return None


def accepted_tables() -> dict[str, set[str]]:
    """Every table of the configuration ("[gateway]", "[[chargers]]", "[ocpi.location]"...)
    with the keys it accepts, as the parser says."""
    tables: dict[str, set[str]] = {}

    def walk(path: tuple[Segment, ...]) -> None:
        keys = _allowed(path)
        assert keys is not None
        if path:
            tables[_heading(path)] = keys
        for key in sorted(keys):
            for kind in get_args(Kind):
                if _allowed((*path, (key, kind))) is not None:
                    walk((*path, (key, kind)))
                    break

    walk(())
    return tables


HEADING = re.compile(r"^#{2,4} `(?P<table>\[\[?[a-z_.<>]+\]\]?)`\s*$")
ROW_KEYS = re.compile(r"`([a-z0-9_]+)`")


def documented_tables() -> dict[str, dict[str, list[str]]]:
    """The reference's tables: heading → key → the row's cells (type, default, unit,
    meaning). A first cell may name several keys (a secret's three forms)."""
    tables: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        heading = HEADING.match(line)
        if heading:
            current = tables.setdefault(heading["table"], {})
            continue
        if line.startswith("#"):
            current = None
            continue
        if current is None or not line.startswith("| `"):
            continue
        first, *cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        for key in ROW_KEYS.findall(first):
            assert key not in current, f"{key} documented twice"
            current[key] = cells
    return tables


def test_every_accepted_key_is_documented_and_every_documented_key_accepted() -> None:
    accepted = accepted_tables()
    documented = documented_tables()
    problems = []
    for table in sorted(accepted.keys() - documented.keys()):
        problems.append(f"{table}: a table the parser accepts has no section in the reference")
    for table in sorted(documented.keys() - accepted.keys()):
        problems.append(f"{table}: documented, but the parser has no such table")
    for table in sorted(accepted.keys() & documented.keys()):
        for key in sorted(accepted[table] - documented[table].keys()):
            problems.append(f"{table} {key}: accepted, but has no row in the reference")
        for key in sorted(documented[table].keys() - accepted[table]):
            if not _accepted_outside_the_list(table, key):
                problems.append(f"{table} {key}: documented, but the parser refuses it")
    assert not problems, f"{REFERENCE.name} is out of date:\n" + "\n".join(problems)


def _accepted_outside_the_list(table: str, key: str) -> bool:
    """A key the table takes instead of its listed ones (`[[tariffs]] file`): not reported as
    unknown when given."""
    path: list[Segment] = []
    is_array = table.startswith("[[")
    names = table.strip("[]").split(".")
    for index, name in enumerate(names):
        if name == "<id>":
            continue
        if index + 1 < len(names) and names[index + 1] == "<id>":
            path.append((name, "map"))
        elif index == len(names) - 1 and is_array:
            path.append((name, "array"))
        else:
            path.append((name, "table"))
    where = _where(tuple(path))
    try:
        parse_config(_document(tuple(path), {key: 1}))
    except ConfigError as error:
        return not any(p.startswith(f"{where}.{key}: unknown ") for p in error.problems)
    return True


def _section_classes() -> dict[str, type]:
    """Headings of the sections `GatewayConfig` holds as dataclasses, with their class."""
    classes: dict[str, type] = {}
    for name, hint in get_type_hints(GatewayConfig).items():
        for candidate in (hint, *get_args(hint)):
            if is_dataclass(candidate) and isinstance(candidate, type):
                array = get_origin(hint) is tuple
                classes[f"[[{name}]]" if array else f"[{name}]"] = candidate
    return classes


def test_documented_defaults_are_the_code_s() -> None:
    """A default written as one TOML value (`` `2.0` ``, `` `"tcp"` ``) equals the default of
    the section dataclass's field of that name."""
    documented = documented_tables()
    checked = 0
    for table, cls in _section_classes().items():
        for item in fields(cls):
            cells = documented.get(table, {}).get(item.name)
            if cells is None or item.default is MISSING:
                continue
            default = cells[1]
            literal = re.fullmatch(r"`([^`]+)`", default)
            if literal is None:
                continue
            try:
                value = tomllib.loads(f"value = {literal[1]}")["value"]
            except tomllib.TOMLDecodeError:
                continue  # a reference to another key, e.g. `[upstream] ocpp_version`
            code = item.default
            if isinstance(code, str) and isinstance(value, str) and table == "[gateway]":
                value = value.upper() if item.name == "log_level" else value
            assert value == code, f"{table} {item.name}: documented {default}, code {code!r}"
            checked += 1
    assert checked >= 40, f"only {checked} defaults could be compared"
