"""`evgw demo` as a user runs it: a subprocess, sessions reaching the local central system,
and a clean stop on SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys

from gateway.cli import SHUTDOWN_GRACE_S

DEMO_SECONDS = 25


async def test_demo_shows_sessions_and_stops_cleanly_on_sigint() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--duration",
        "120",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def read_until_a_session_completed() -> None:
        assert process.stdout is not None
        while not any("StopTransaction" in line for line in lines):
            line = await process.stdout.readline()
            if not line:
                return
            lines.append(line.decode())

    try:
        # A safety net against a hung demo, not a performance assertion.
        async with asyncio.timeout(DEMO_SECONDS * 3):
            await read_until_a_session_completed()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            # Bounded, so that a demo that does not stop fails this test instead of hanging
            # the suite; the gateway's own shutdown grace is SHUTDOWN_GRACE_S.
            async with asyncio.timeout(SHUTDOWN_GRACE_S * 3):
                rest, errors = await process.communicate()
        except TimeoutError:
            # Ask for every thread's stack (faulthandler in evgw) before killing it.
            process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(2)
            process.kill()
            rest, errors = await process.communicate()
            raise AssertionError(
                "evgw demo did not stop within its grace period after SIGINT:\n"
                + errors.decode()[-4000:]
            ) from None
    output = "".join(lines) + rest.decode()
    assert "StartTransaction" in output
    assert "⇒ transactionId 1" in output
    assert "StopTransaction" in output
    assert "MeterValues" in output
    assert process.returncode == 0, errors.decode()
    assert "Traceback" not in errors.decode()
    assert output.rstrip().endswith("evgw demo: stopped")
