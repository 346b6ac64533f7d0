"""Observability of a running gateway: Prometheus metrics, alarms, uptime and fault history
per charger, and the log output (JSON lines, a rotated file, the recent records in memory)."""
