"""The site's tariffs: the `[[tariffs]]` tables of the configuration, their checks, and the
choice of a charger's tariff at the start of a session.

A tariff is written either inline, with the OCPI field names (TOML mirroring the OCPI JSON)::

    [[tariffs]]
    id = "AC-STANDARD"
    currency = "EUR"
    type = "REGULAR"                        # optional: AD_HOC_PAYMENT, PROFILE_CHEAP/FAST/GREEN
    min_price = { excl_vat = 0.50, incl_vat = 0.60 }
    tariff_alt_text = [{ language = "en", text = "0.30 EUR/kWh, 0.05 EUR/min after 4 h" }]

    [[tariffs.elements]]
    price_components = [
      { type = "FLAT", price = 0.50, vat = 21.0, step_size = 1 },
      { type = "ENERGY", price = 0.30, vat = 21.0, step_size = 1 },
    ]

    [[tariffs.elements]]
    price_components = [{ type = "PARKING_TIME", price = 3.00, vat = 21.0, step_size = 60 }]
    restrictions = { min_duration = 14400 }

or as a file of OCPI JSON (one Tariff object, or a list of them)::

    [[tariffs]]
    file = "tariffs/public.json"            # relative to the configuration file

`country_code` and `party_id` default to `[ocpi]`'s (we own the tariff) and must equal them;
`last_updated` defaults to the modification time of the file that defines the tariff, so an
edit reaches the eMSPs as an update. Which charger uses which tariff is
`[ocpi.chargers.<id>] tariff_ids`; times of day, dates and weekdays are local to
`[ocpi.location] time_zone`. Checks: ids unique; every referenced id defined; no two tariffs
of the same type on one charger valid at the same time (ocpi.md §4 "tariffs").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.tariffs.model import Tariff, TariffError, TariffType, parse_tariff

_CONFIG_ONLY_KEYS = frozenset({"file"})


def parse_tariffs(
    problems: list[str],
    raw: Any,
    *,
    origin: Path | None = None,
    owner: tuple[str, str] | None = None,
) -> list[Tariff]:
    """The tariffs of a `[[tariffs]]` array; appends one problem per bad tariff, naming the
    key. `origin`: the configuration file (relative paths and the default last_updated);
    `owner`: our (country_code, party_id) from `[ocpi]`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append("tariffs: must be an array of tables [[tariffs]]")
        return []
    tariffs: list[Tariff] = []
    for index, item in enumerate(raw):
        where = f"tariffs[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        if "file" in item:
            tariffs.extend(_from_file(problems, where, item, origin, owner))
            continue
        document = dict(item)
        if owner is not None:
            document.setdefault("country_code", owner[0])
            document.setdefault("party_id", owner[1])
        tariff = _parse(problems, where, document, _modified(origin))
        if tariff is not None:
            tariffs.append(tariff)
    for index, tariff in enumerate(tariffs):
        if owner is not None and (tariff.country_code, tariff.party_id) != owner:
            problems.append(
                f"tariffs[{index}].party_id: tariff {tariff.id!r} belongs to"
                f" {tariff.country_code}/{tariff.party_id}, but [ocpi] is {owner[0]}/{owner[1]}"
            )
    seen: set[str] = set()
    for index, tariff in enumerate(tariffs):
        if tariff.id in seen:
            problems.append(f"tariffs[{index}].id: duplicate tariff id {tariff.id!r}")
        seen.add(tariff.id)
    return tariffs


def _from_file(
    problems: list[str],
    where: str,
    item: Mapping[str, Any],
    origin: Path | None,
    owner: tuple[str, str] | None,
) -> list[Tariff]:
    extra = sorted(set(item) - _CONFIG_ONLY_KEYS)
    if extra:
        problems.append(f"{where}.{extra[0]}: not with file (the file holds the whole tariff)")
        return []
    name = item["file"]
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.file: must be a path, got {name!r}")
        return []
    path = Path(name)
    if not path.is_absolute() and origin is not None:
        path = origin.parent / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        problems.append(f"{where}.file: cannot read {path}: {error.strerror or error}")
        return []
    try:
        document = json.loads(text, parse_float=Decimal)
    except ValueError as error:
        problems.append(f"{where}.file: {path} is not valid JSON: {error}")
        return []
    items = document if isinstance(document, list) else [document]
    tariffs = []
    for number, entry in enumerate(items):
        label = f"{where} ({path}{f' item {number}' if isinstance(document, list) else ''})"
        if isinstance(entry, Mapping) and owner is not None:
            entry = {"country_code": owner[0], "party_id": owner[1], **entry}
        tariff = _parse(problems, label, entry, _modified(path))
        if tariff is not None:
            tariffs.append(tariff)
    return tariffs


def _parse(problems: list[str], where: str, raw: Any, updated: datetime) -> Tariff | None:
    try:
        return parse_tariff(raw, strict=True, last_updated=updated)
    except TariffError as error:
        problems.append(f"{where}.{error.field}: {error.problem}" if error.field else str(error))
        return None


def _modified(path: Path | None) -> datetime:
    """When the defining file last changed (whole seconds, UTC): a tariff's default
    last_updated. Without a file, now."""
    if path is not None:
        try:
            return datetime.fromtimestamp(int(path.stat().st_mtime), UTC)
        except OSError:
            pass
    return datetime.now(UTC).replace(microsecond=0)


def check_tariffs(
    problems: list[str],
    tariffs: Sequence[Tariff],
    assignments: Mapping[str, Sequence[str]],
    *,
    time_zone_key: str | None,
) -> None:
    """Cross-checks: `assignments` maps the key that assigns tariffs (e.g.
    "ocpi.chargers.CP-1.tariff_ids") to the ids it names; `time_zone_key` names where the
    site's time zone is configured (None: nowhere)."""
    by_id = {tariff.id: tariff for tariff in tariffs}
    if time_zone_key is None:
        for index, tariff in enumerate(tariffs):
            if tariff.uses_local_time:
                problems.append(
                    f"tariffs[{index}].elements: tariff {tariff.id!r} has local time, date or"
                    " weekday restrictions, which need the site's time zone"
                    " ([ocpi.location] time_zone)"
                )
    for key, ids in assignments.items():
        assigned = []
        for tariff_id in ids:
            if tariff_id not in by_id:
                known = ", ".join(sorted(by_id)) or "none"
                problems.append(f"{key}: unknown tariff {tariff_id!r} (defined: {known})")
            else:
                assigned.append(by_id[tariff_id])
        for position, first in enumerate(assigned):
            for second in assigned[position + 1 :]:
                if first.type == second.type and _overlap(first, second):
                    kind = first.type.value if first.type else "untyped"
                    problems.append(
                        f"{key}: tariffs {first.id!r} and {second.id!r} are both {kind} and"
                        " valid at the same time (one active tariff per type; end the old one"
                        " with end_date_time before the new one's start_date_time)"
                    )


def _overlap(first: Tariff, second: Tariff) -> bool:
    starts = [t for t in (first.start_date_time, second.start_date_time) if t is not None]
    ends = [t for t in (first.end_date_time, second.end_date_time) if t is not None]
    # Both ends are inclusive (end_date_time is the last valid instant, as valid_at has it).
    return not starts or not ends or max(starts) <= min(ends)


def select_tariff(
    tariffs: Sequence[Tariff], at: datetime, kind: TariffType = TariffType.REGULAR
) -> Tariff | None:
    """The tariff of a session starting at `at` among a charger's tariffs (in their
    configured order): valid at `at` and of type `kind`, or else without a type (valid for
    all sessions). `kind`: AD_HOC_PAYMENT for a payment terminal, PROFILE_* for a charging
    preference, REGULAR for RFID, remote starts and no preference (mod_tariffs TariffType).
    The session keeps it to the end (ocpi.md §5.1)."""
    valid = [tariff for tariff in tariffs if tariff.valid_at(at)]
    exact = next((tariff for tariff in valid if tariff.type == kind), None)
    if exact is not None:
        return exact
    return next((tariff for tariff in valid if tariff.type is None), None)
