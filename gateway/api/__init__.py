"""The local HTTP API and the dashboard (`[api]` in the config): `ApiServer` serves the
site's state as versioned JSON under `/api/v1/`, its OpenAPI description, a live stream for
the dashboard, and the dashboard itself at `/`."""

from gateway.api.server import ApiServer

__all__ = ["ApiServer"]
