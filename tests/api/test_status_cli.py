"""`evgw status` as a script runs it: a subprocess against a running gateway's API, and its
exit codes (0 fine, 1 a problem, 2 usage or refused token, 3 nothing to reach)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

from tests.api.conftest import WITHIN_S, LiveSite, until


async def evgw_status(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "status",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    async with asyncio.timeout(WITHIN_S * 2):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_status_summarises_a_healthy_gateway_and_exits_0(site: LiveSite) -> None:
    site.simulators[0].plug_in(rfid="TAG-ST")
    await until(lambda: site.gateway.site.connector("CP-1").session is not None)
    code, out, err = await evgw_status("--url", site.url, f"--token={site.read_token}")
    assert code == 0, out + err
    assert "3 chargers" in out
    assert "CP-1" in out
    assert "CP-3" in out
    assert "uplinks: 3/3 connected" in out
    assert "sessions: 1 live" in out
    assert "no problems" in out

    # The token from the environment, the whole snapshot as JSON.
    code, out, _ = await evgw_status(
        "--url", site.url, "--json", env={"EVGW_API_TOKEN": site.admin_token}
    )
    assert code == 0
    snapshot = json.loads(out)
    assert [c["id"] for c in snapshot["chargers"]] == ["CP-1", "CP-2", "CP-3"]
    assert snapshot["problems"] == []


async def test_status_exits_1_when_the_gateway_reports_a_problem(site: LiveSite) -> None:
    await site.simulators[2].stop()  # CP-3 stops answering
    await until(lambda: not site.gateway.site.connector("CP-3").online)
    code, out, _ = await evgw_status("--url", site.url, f"--token={site.read_token}")
    assert code == 1, out
    assert "problem: charger CP-3: not answering" in out


async def test_status_exit_codes_for_usage_refusal_and_nothing_listening(site: LiveSite) -> None:
    code, _, err = await evgw_status("--url", site.url, env={"EVGW_API_TOKEN": ""})
    assert code == 2
    assert "no token" in err
    code, _, err = await evgw_status("--url", site.url, "--token", "not-a-configured-token")
    assert code == 2
    assert "refused the token (401)" in err
    code, _, err = await evgw_status("--url", "ftp://example", "--token", "t")
    assert code == 2
    assert "--url must be an http://" in err
    code, _, err = await evgw_status("--bogus")
    assert code == 2

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    code, _, err = await evgw_status("--url", f"http://127.0.0.1:{free_port}", "--token", "t")
    assert code == 3
    assert "cannot reach the gateway" in err

    code, out, _ = await evgw_status("--help")
    assert code == 0
    assert "--json" in out
