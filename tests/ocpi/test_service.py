"""The OCPI service inside the gateway never takes it down: a port that is taken is retried
while the chargers keep being served."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.ocpi.conftest import free_port, live_ocpi
from tests.ocpi.emsp_peer import EmspPeer


async def test_port_in_use_is_retried_and_the_gateway_keeps_running(
    tmp_path: Path, peer: EmspPeer, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    # Freed after the OCPI server's first attempt failed (it retries after 1 s, then 5 s).
    asyncio.get_running_loop().call_later(1.5, blocker.close)
    async with live_ocpi(tmp_path, port=port, chargers=1) as live:
        # live_ocpi returned: the chargers were polled and the server listens now.
        assert live.gateway.site.connector("CP-1").status is not None
        assert live.gateway.ocpi is not None
        assert live.gateway.ocpi.port == port
        reply = await peer.call("GET", live.versions_url, token=live.token_a["emsp-a"])
        assert reply.status == 200
    refused = [r for r in caplog.records if r.getMessage().startswith("OCPI server cannot listen")]
    assert refused, "the first attempt should have found the port taken"
