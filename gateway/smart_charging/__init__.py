"""Smart charging, free of I/O: the charging profile model of OCPP 1.6 and 2.0.1 (`profile`),
the profiles installed on a charger with the replacement and clearing rules (`installed`), and
their evaluation into the limit in force and the composite schedule (`schedule`).

The OCPP stations feed it (`gateway.ocpp.smart_charging`) and turn its limits into caps for the
load balancer, or into the charger's setpoint when the site is not balanced."""

from gateway.smart_charging.installed import InstalledProfiles
from gateway.smart_charging.profile import (
    ChargingProfile,
    Kind,
    ProfileError,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
    SchedulePeriod,
    parse_profile_16,
    parse_profile_201,
    profile_json,
)
from gateway.smart_charging.schedule import (
    NOMINAL_VOLTAGE_V,
    CompositePeriod,
    Installed,
    Limit,
    TransactionContext,
    composite,
    limit_at,
    next_boundary,
)

__all__ = [
    "NOMINAL_VOLTAGE_V",
    "ChargingProfile",
    "CompositePeriod",
    "Installed",
    "InstalledProfiles",
    "Kind",
    "Limit",
    "ProfileError",
    "Purpose",
    "RateUnit",
    "Recurrency",
    "Schedule",
    "SchedulePeriod",
    "TransactionContext",
    "composite",
    "limit_at",
    "next_boundary",
    "parse_profile_16",
    "parse_profile_201",
    "profile_json",
]
