"""The charging profile model: parsing both versions with specific errors, writing back,
replacement and clearing rules, and the evaluation rules of ocpp.md §8 on worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.smart_charging import (
    Installed,
    InstalledProfiles,
    Kind,
    ProfileError,
    Purpose,
    RateUnit,
    Recurrency,
    TransactionContext,
    composite,
    limit_at,
    next_boundary,
    parse_profile_16,
    parse_profile_201,
    profile_json,
)

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # a Monday
MAX_A = 32.0


def p16(
    profile_id: int = 1,
    *,
    stack_level: int = 0,
    purpose: str = "TxDefaultProfile",
    kind: str = "Absolute",
    periods: list[tuple[int, float]] | None = None,
    unit: str = "A",
    **extra: Any,
) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": start, "limit": limit} for start, limit in (periods or [(0, 16.0)])
        ],
    }
    for key in ("duration", "startSchedule", "minChargingRate"):
        if key in extra:
            schedule[key] = extra.pop(key)
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }


def installed(
    payload: dict[str, Any], connector_id: int = 1, session: str | None = None
) -> Installed:
    return Installed(parse_profile_16(payload), connector_id, T0, session)


def limit(entries: list[Installed], at: datetime, tx: TransactionContext | None = None) -> float:
    return limit_at(
        entries, at, connector_id=1, transaction=tx, charger_phases=3, max_current_a=MAX_A
    ).amps


def test_a_1_6_profile_parses_with_every_field() -> None:
    profile = parse_profile_16(
        p16(
            7,
            stack_level=3,
            kind="Recurring",
            recurrencyKind="Daily",
            validFrom="2026-01-01T00:00:00Z",
            validTo="2026-02-01T00:00:00Z",
            startSchedule="2026-01-01T06:00:00Z",
            duration=3600,
            minChargingRate=6.0,
            periods=[(0, 10.0), (1800, 20)],
        )
    )
    assert profile.id == 7
    assert profile.stack_level == 3
    assert profile.purpose is Purpose.TX_DEFAULT
    assert profile.kind is Kind.RECURRING
    assert profile.recurrency is Recurrency.DAILY
    assert profile.schedule.unit is RateUnit.AMPS
    assert profile.schedule.duration_s == 3600
    assert profile.schedule.start == datetime(2026, 1, 1, 6, tzinfo=UTC)
    assert [(p.start_s, p.limit) for p in profile.schedule.periods] == [(0, 10.0), (1800, 20.0)]
    assert profile.schedule.min_charging_rate == 6.0
    assert parse_profile_16(profile_json(profile, v201=False)) == profile


def test_a_2_0_1_profile_parses_and_round_trips() -> None:
    payload = {
        "id": 4,
        "stackLevel": 1,
        "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 9,
                "chargingRateUnit": "W",
                "startSchedule": "2026-01-05T08:00:00Z",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000, "numberPhases": 3}],
            }
        ],
    }
    profile = parse_profile_201(payload)
    assert profile.purpose is Purpose.CHARGE_POINT_MAX
    assert profile.schedule.schedule_id == 9
    assert profile.schedule.periods[0].number_phases == 3
    again = profile_json(profile, v201=True)
    assert again["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert parse_profile_201(again) == profile


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (p16(periods=[(10, 16.0)]), r"chargingSchedulePeriod\[0\]\.startPeriod: the first"),
        (p16(periods=[(0, 16.0), (0, 10.0)]), r"\[1\]\.startPeriod: periods must be in increasing"),
        (p16(periods=[(0, -1.0)]), r"limit: must not be negative"),
        (p16(unit="kW"), r"chargingSchedule\.chargingRateUnit: 'kW' is not one of A, W"),
        (p16(kind="Recurring", startSchedule="2026-01-01T00:00:00Z"), "recurrencyKind: required"),
        (p16(kind="Recurring", recurrencyKind="Daily"), "startSchedule: required"),
        (p16(purpose="Whatever"), "chargingProfilePurpose: 'Whatever' is not one of"),
        (
            p16(validFrom="2026-01-02T00:00:00Z", validTo="2026-01-01T00:00:00Z"),
            "validTo: must be after validFrom",
        ),
        (p16(validFrom="yesterday"), "validFrom: not an RFC 3339 date-time"),
        (p16(stack_level=-1), "stackLevel: must be at least 0"),
        (p16(transactionId=5), "transactionId: only a TxProfile"),
        ({**p16(), "chargingSchedule": {"chargingRateUnit": "A"}}, "at least one period"),
    ],
)
def test_malformed_1_6_profiles_are_refused_naming_the_field(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        parse_profile_16(payload)


def test_malformed_2_0_1_profiles_are_refused_naming_the_field() -> None:
    schedule = {
        "id": 1,
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6}],
    }
    base = {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [schedule],
    }
    with pytest.raises(ProfileError, match="cannot be Relative"):
        parse_profile_201(base)
    with pytest.raises(ProfileError, match="only one schedule"):
        parse_profile_201(
            {
                **base,
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [schedule, schedule],
            }
        )
    with pytest.raises(ProfileError, match="'ChargePointMaxProfile' is not one of"):
        parse_profile_201({**base, "chargingProfilePurpose": "ChargePointMaxProfile"})


def test_same_id_or_same_purpose_and_stack_level_replaces() -> None:
    profiles = InstalledProfiles()
    assert profiles.install(installed(p16(1, stack_level=0))) == []
    assert profiles.install(installed(p16(2, stack_level=1))) == []
    # Same purpose and stack level on the same connector: replaces profile 1.
    assert profiles.install(installed(p16(3, stack_level=0))) == [1]
    # Same slot on connector 0 is a different slot.
    assert profiles.install(installed(p16(4, stack_level=0), connector_id=0)) == []
    # Same id: replaces it whatever it was.
    assert profiles.install(
        installed(p16(2, stack_level=5, purpose="ChargePointMaxProfile"), 0)
    ) == [2]
    # TxProfiles of different transactions do not replace each other.
    profiles.install(installed(p16(10, purpose="TxProfile"), session="s1"))
    assert profiles.install(installed(p16(11, purpose="TxProfile"), session="s2")) == []
    assert sorted(entry.profile.id for entry in profiles) == [2, 3, 4, 10, 11]

    assert profiles.transaction_ended("s1") == [10]
    assert profiles.clear(profile_id=99) == []
    assert profiles.clear(purpose=Purpose.TX_DEFAULT, connector_id=0) == [4]
    assert profiles.clear(stack_level=5) == [2]
    assert profiles.clear() == [3, 11]
    assert len(profiles) == 0


def test_tx_profile_overrides_tx_default_and_never_exceeds_the_station_maximum() -> None:
    tx = TransactionContext("s1", T0)
    entries = [
        installed(p16(1, purpose="ChargePointMaxProfile", periods=[(0, 20.0)]), connector_id=0),
        installed(p16(2, purpose="TxDefaultProfile", periods=[(0, 10.0)]), connector_id=0),
        installed(p16(3, purpose="TxProfile", periods=[(0, 25.0)]), session="s1"),
    ]
    at = T0 + timedelta(minutes=1)
    assert limit(entries, at) == 10.0  # no transaction: TxDefault
    assert limit(entries, at, tx) == 20.0  # the TxProfile's 25 A, capped by the station's 20 A
    other = TransactionContext("s2", T0)
    assert limit(entries, at, other) == 10.0  # another transaction's TxProfile does not apply
    assert limit([], at, tx) == MAX_A  # nothing installed: the charger's own maximum


def test_a_connector_tx_default_replaces_the_station_wide_one_for_that_connector() -> None:
    entries = [
        installed(p16(1, stack_level=5, periods=[(0, 10.0)]), connector_id=0),
        installed(p16(2, stack_level=0, periods=[(0, 14.0)]), connector_id=1),
    ]
    at = T0 + timedelta(seconds=1)
    assert limit(entries, at) == 14.0
    assert (
        limit_at(
            entries, at, connector_id=0, transaction=None, charger_phases=3, max_current_a=MAX_A
        ).amps
        == 10.0
    )


def test_a_higher_stack_level_wins_while_valid_then_the_lower_one_returns() -> None:
    entries = [
        installed(p16(1, stack_level=0, periods=[(0, 16.0)], startSchedule="2026-01-05T08:00:00Z")),
        installed(
            p16(
                2,
                stack_level=1,
                periods=[(0, 8.0)],
                startSchedule="2026-01-05T08:00:00Z",
                duration=600,
            )
        ),
    ]
    assert limit(entries, T0) == 8.0
    assert limit(entries, T0 + timedelta(seconds=599)) == 8.0
    assert limit(entries, T0 + timedelta(seconds=600)) == 16.0
    # A top-level profile without a duration never falls back (ocpp.md §8).
    forever = [entries[0], installed(p16(3, stack_level=2, periods=[(0, 6.0)]))]
    assert limit(forever, T0 + timedelta(days=30)) == 6.0


def test_a_future_valid_from_leaves_a_gap_and_watts_become_amperes() -> None:
    start = T0 + timedelta(hours=1)
    entries = [
        installed(
            p16(
                1,
                unit="W",
                periods=[(0, 11040.0)],
                validFrom=start.isoformat(),
                startSchedule=start.isoformat(),
            )
        )
    ]
    assert limit(entries, T0) == MAX_A  # not valid yet: unconstrained
    assert limit(entries, start) == pytest.approx(16.0)  # 11040 W / (230 V x 3)
    one_phase = limit_at(
        entries, start, connector_id=1, transaction=None, charger_phases=1, max_current_a=MAX_A
    )
    assert one_phase.amps == MAX_A  # 48 A on one phase: the charger's 32 A binds
    assert one_phase.number_phases == 1


def test_relative_schedules_start_with_the_transaction() -> None:
    entries = [installed(p16(1, kind="Relative", periods=[(0, 6.0), (60, 12.0)], duration=120))]
    tx = TransactionContext("s1", T0)
    assert limit(entries, T0 + timedelta(seconds=30), tx) == 6.0
    assert limit(entries, T0 + timedelta(seconds=90), tx) == 12.0
    assert limit(entries, T0 + timedelta(seconds=130), tx) == MAX_A
    assert limit(entries, T0 + timedelta(hours=5)) == 6.0  # no transaction: starts "now"
    periods = composite(
        entries,
        T0,
        timedelta(minutes=5),
        connector_id=1,
        transaction=tx,
        charger_phases=3,
        max_current_a=MAX_A,
    )
    assert [((p.start - T0).total_seconds(), p.amps) for p in periods] == [
        (0, 6.0),
        (60, 12.0),
        (120, MAX_A),
    ]


def test_a_weekly_recurring_profile_repeats() -> None:
    entries = [
        installed(
            p16(
                1,
                kind="Recurring",
                recurrencyKind="Weekly",
                startSchedule="2026-01-05T00:00:00Z",
                periods=[(0, 10.0), (86_400, 20.0)],
            )
        )
    ]
    monday = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert limit(entries, monday) == 10.0
    assert limit(entries, monday + timedelta(days=1)) == 20.0
    assert limit(entries, monday + timedelta(days=7)) == 10.0
    assert limit(entries, monday - timedelta(days=70)) == 10.0  # the pattern extends back too


def test_the_next_change_is_the_next_period_or_validity_boundary() -> None:
    entries = [
        installed(
            p16(
                1,
                periods=[(0, 10.0), (600, 12.0)],
                startSchedule=T0.isoformat(),
                duration=1800,
                validTo=(T0 + timedelta(hours=2)).isoformat(),
            )
        )
    ]
    horizon = timedelta(days=1)
    assert next_boundary(entries, T0, horizon, None) == T0 + timedelta(seconds=600)
    assert next_boundary(entries, T0 + timedelta(seconds=600), horizon, None) == T0 + timedelta(
        seconds=1800
    )
    assert next_boundary(entries, T0 + timedelta(seconds=1800), horizon, None) == T0 + timedelta(
        hours=2
    )
    assert next_boundary(entries, T0 + timedelta(hours=2), horizon, None) is None
    assert next_boundary([], T0, horizon, None) is None
