"""`evgw demo` as a user runs it: a subprocess, sessions reaching the local central system,
and a clean stop on SIGINT."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

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
            # Ask for every thread's stack (faulthandler in evgw) and note the signal masks
            # before killing it.
            signals = _signal_state(process.pid) + await _native_stacks(process.pid)
            process.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1)
            process.send_signal(signal.SIGUSR2)
            await asyncio.sleep(2)
            process.kill()
            rest, errors = await process.communicate()
            raise AssertionError(
                "evgw demo did not stop within its grace period after SIGINT:\n"
                + signals
                + "\n--- stdout:\n"
                + rest.decode()[-2000:]
                + "\n--- stderr:\n"
                + errors.decode()[-12000:]
            ) from None
    output = "".join(lines) + rest.decode()
    assert "StartTransaction" in output
    assert "⇒ transactionId 1" in output
    assert "StopTransaction" in output
    assert "MeterValues" in output
    assert process.returncode == 0, errors.decode()
    assert "Traceback" not in errors.decode()
    assert output.rstrip().endswith("evgw demo: stopped")


def _signal_state(pid: int) -> str:
    """The signal lines of /proc/<pid>/status (pending, blocked, caught), per process and
    per thread."""
    lines: list[str] = []
    try:
        for status in [Path(f"/proc/{pid}/status"), *Path(f"/proc/{pid}/task").glob("*/status")]:
            fields = [
                line
                for line in status.read_text().splitlines()
                if line.startswith(("Name", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"))
            ]
            lines.append(f"{status}: " + "; ".join(fields))
    except OSError as error:
        lines.append(f"/proc/{pid}: {error}")
    return "\n".join(lines)


async def _native_stacks(pid: int) -> str:
    """Every thread's C stack from gdb, where gdb is installed (a hang inside the event
    loop's C code shows no Python frame)."""
    if shutil.which("gdb") is None:
        return ""
    gdb = await asyncio.create_subprocess_exec(
        "gdb",
        "-p",
        str(pid),
        "-batch",
        "-ex",
        "thread apply all bt 30",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            out, _ = await gdb.communicate()
    except TimeoutError:
        gdb.kill()
        return "\ngdb timed out"
    return "\n--- gdb:\n" + out.decode(errors="replace")[-6000:]
