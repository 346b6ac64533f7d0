"""Tariffs (docs/tariffs.md): `model` (the OCPI 2.2.1 Tariff, parsed from and written to its
JSON form), `periods` (charging periods), `pricing` (the exact price of a session),
`metering` (charging periods from meter samples, cut where the price could change) and
`catalog` (the `[[tariffs]]` configuration and the choice of a session's tariff)."""
