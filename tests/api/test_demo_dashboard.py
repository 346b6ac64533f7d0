"""`evgw demo` serves the dashboard: it prints the URL and a token that work."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from tests.api.conftest import WITHIN_S

DASHBOARD_LINE = re.compile(r"dashboard at (http://\S+)/ \(token (\S+)\)")


async def test_the_demo_prints_a_dashboard_url_and_token_that_work() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--api-port",
        "0",
        "--duration",
        "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        found = None
        async with asyncio.timeout(WITHIN_S * 2):
            while found is None:
                line = await process.stdout.readline()
                assert line, "the demo ended without printing the dashboard's address"
                found = DASHBOARD_LINE.search(line.decode())
        url, token = found.group(1), found.group(2)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WITHIN_S)) as client:
            async with client.get(url + "/") as page:
                assert page.status == 200
                assert "evgw dashboard" in await page.text()
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(url + "/api/v1/me", headers=headers) as me:
                assert await me.json() == {"name": "demo", "role": "admin"}
            async with client.get(url + "/api/v1/circuits", headers=headers) as circuits:
                # The demo's fuse is below its chargers' total: the balancing has work.
                assert [c["id"] for c in await circuits.json()] == ["depot"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(WITHIN_S * 2):
            await process.communicate()
    assert process.returncode == 0
