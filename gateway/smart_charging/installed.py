"""The profiles installed on one charger, with the spec's replacement and clearing rules.

- **Replacement** (1.6 §3.13.2, 2.0.1 K01.FR.05): a new profile replaces the installed one with
  the same id, and the one with the same purpose and stackLevel on the same connector (for a
  TxProfile: of the same transaction).
- **Clearing** (ClearChargingProfile): by id; otherwise every profile matching all the given
  criteria (connector, purpose, stackLevel); no criteria at all clears everything.
- A TxProfile goes when its transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from gateway.smart_charging.profile import Purpose
from gateway.smart_charging.schedule import Installed

MAX_STACK_LEVEL: Final = 10
"""The highest stackLevel accepted (1.6 ChargeProfileMaxStackLevel). The evaluation has no
limit of its own; a small published bound tells the central system what to plan with."""
MAX_PERIODS: Final = 48
"""The most periods per schedule (ChargingScheduleMaxPeriods): a day in half hours."""
MAX_PROFILES: Final = 20
"""The most profiles installed per charger (MaxChargingProfilesInstalled): bounds the stored
rows and the evaluation work per charger."""


class InstalledProfiles:
    """A charger's installed profiles (in memory; the caller persists the changes)."""

    def __init__(self, entries: Iterable[Installed] = ()) -> None:
        self._entries: dict[int, Installed] = {entry.profile.id: entry for entry in entries}

    def __iter__(self) -> Iterator[Installed]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, profile_id: int) -> Installed | None:
        return self._entries.get(profile_id)

    def install(self, new: Installed) -> list[int]:
        """Add `new`; returns the ids of the profiles it replaced (its own id included when
        it replaced a profile with that id)."""
        replaced = []
        for entry in list(self._entries.values()):
            same_slot = (
                entry.profile.purpose is new.profile.purpose
                and entry.profile.stack_level == new.profile.stack_level
                and entry.connector_id == new.connector_id
                and (new.profile.purpose is not Purpose.TX or entry.session_id == new.session_id)
            )
            if entry.profile.id == new.profile.id or same_slot:
                del self._entries[entry.profile.id]
                replaced.append(entry.profile.id)
        self._entries[new.profile.id] = new
        return replaced

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: Purpose | None = None,
        stack_level: int | None = None,
    ) -> list[int]:
        """Remove by id, else by criteria (see the module docstring); returns the removed ids."""
        if profile_id is not None:
            return [profile_id] if self._entries.pop(profile_id, None) is not None else []
        removed = [
            entry.profile.id
            for entry in self._entries.values()
            if (connector_id is None or entry.connector_id == connector_id)
            and (purpose is None or entry.profile.purpose is purpose)
            and (stack_level is None or entry.profile.stack_level == stack_level)
        ]
        for removed_id in removed:
            del self._entries[removed_id]
        return removed

    def transaction_ended(self, session_id: str) -> list[int]:
        """Remove the TxProfiles of a session that ended; returns their ids."""
        removed = [
            entry.profile.id
            for entry in self._entries.values()
            if entry.profile.purpose is Purpose.TX and entry.session_id == session_id
        ]
        for removed_id in removed:
            del self._entries[removed_id]
        return removed
