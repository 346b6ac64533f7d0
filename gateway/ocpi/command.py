"""`evgw ocpi-token --config FILE PARTNER`: issue a CREDENTIALS_TOKEN_A for a partner to
register with us, printed once on stdout (with our versions URL) to be handed over out of
band; never logged. A running gateway accepts it within seconds (the partner registry
re-reads the store on an unknown token)."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from gateway.config import ConfigError, load_config
from gateway.ocpi.partners import PartnerRegistry, PartnerStatus
from gateway.ocpi.versions import versions_url
from gateway.store import Store


async def issue_token(store_path: str, partner: str) -> str:
    """A fresh token A for `partner` (created if unknown), stored; returns it."""
    store = await Store.open(store_path)
    try:
        registry = await PartnerRegistry.open(store)
        current = registry.get(partner)
        if current is not None and current.status is PartnerStatus.REGISTERED:
            raise ValueError(
                f"partner {partner!r} is registered; it updates its credentials with PUT,"
                " or unregisters first"
            )
        return await registry.issue_token_a(partner)
    finally:
        await store.close()


def run_ocpi_token(config_path: str, partner: str, out: TextIO = sys.stdout) -> int:
    """The command; exit 0, or 2 with the reason on stderr."""
    config = load_config(config_path)
    if config.ocpi is None:
        raise ConfigError(["ocpi: no [ocpi] table: the gateway does not speak OCPI"], config_path)
    if not partner or len(partner) > 64 or not partner.isprintable():
        print("evgw: partner name must be 1-64 printable characters", file=sys.stderr)
        return 2
    try:
        token = asyncio.run(issue_token(str(config.gateway.store), partner))
    except ValueError as error:
        print(f"evgw: {error}", file=sys.stderr)
        return 2
    print(f"partner:      {partner}", file=out)
    print(f"versions URL: {versions_url(config.ocpi.public_url)}", file=out)
    print(f"token A:      {token}", file=out)
    return 0
