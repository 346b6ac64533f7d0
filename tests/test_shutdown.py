"""A clean stop, as systemd or an operator does it: `evgw run` in its own process against
simulated Modbus chargers and a central system on the `ocpp` package. SIGTERM (and Ctrl-C,
SIGINT) end it with exit code 0, every charger offering its failsafe current (0: paused), the
store consistent (integrity check, WAL folded back, sessions and their transactions there),
and a restart resumes the sessions and raises their current again."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.core.site import ChargerSpec, Site
from gateway.modbus import ModbusCharger, ModbusTcpLink, SimulatedCharger
from gateway.shutdown import leave_chargers_at_failsafe
from tests.ocpp.central_system_ocpp import OcppPackageCsms

SAFETY_DEADLINE_S = 60.0
"""A bound against a hung test, never a timing assertion."""
FAILSAFE_A = {"CP-1": 6.0, "CP-2": 0.0, "CP-3": 10.0}
"""CP-1 and CP-2 charge when the gateway stops; CP-3 is idle (its failsafe is not written)."""
SESSION_CHARGERS = ("CP-1", "CP-2")
CHARGING_A = 12.0
"""Well above every failsafe: the balancing has raised the session (the EV takes 16 A)."""


def _charging(simulator: SimulatedCharger) -> Callable[[], bool]:
    return lambda: simulator.offered_a >= CHARGING_A


async def _until(condition: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(SAFETY_DEADLINE_S):
            while True:
                if condition():
                    return
                await asyncio.sleep(0.05)  # a simulator's state has no event to wait on
    except TimeoutError:
        raise AssertionError(f"not within {SAFETY_DEADLINE_S:g} s: {what}") from None


@pytest.fixture
async def csms() -> AsyncIterator[OcppPackageCsms]:
    central = OcppPackageCsms()
    await central.start()
    yield central
    await central.stop()


@pytest.fixture
async def chargers() -> AsyncIterator[dict[str, SimulatedCharger]]:
    simulators = {charger_id: SimulatedCharger("generic") for charger_id in FAILSAFE_A}
    for simulator in simulators.values():
        await simulator.start()
    yield simulators
    for simulator in simulators.values():
        await simulator.stop()


def _config(tmp_path: Path, url: str, simulators: dict[str, SimulatedCharger]) -> Path:
    lines = [
        "[gateway]",
        f'store = "{tmp_path / "state" / "evgw.sqlite3"}"',
        'log_level = "INFO"',
        "[upstream]",
        f'url = "{url}"',
        "[[circuits]]",
        'id = "grid"',
        "max_current_a = 63",
        "[balancing]",
        "ramp_a_per_s = 100  # at full current within a round, for a short test",
    ]
    for charger_id, simulator in simulators.items():
        lines += [
            "[[chargers]]",
            f'id = "{charger_id}"',
            'profile = "generic"',
            'host = "127.0.0.1"',
            f"port = {simulator.port}",
            "max_current_a = 16",
            "poll_interval_s = 0.2",
            f"failsafe_current_a = {FAILSAFE_A[charger_id]}",
        ]
    path = tmp_path / "evgw.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _start_gateway(config: Path) -> asyncio.subprocess.Process:
    # Logs go to a file, not a pipe: nothing reads a pipe while the gateway runs, and a full
    # pipe would block its (synchronous) logging and with it the whole gateway.
    with _log_path(config).open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(config),
            stdout=log,
            stderr=log,
        )


def _log_path(config: Path) -> Path:
    return config.with_suffix(".log")


async def _stop(process: asyncio.subprocess.Process, signum: int, config: Path) -> tuple[int, str]:
    """Signal, wait, and return the exit code and the log file (every run of this config)."""
    process.send_signal(signum)
    try:
        async with asyncio.timeout(SAFETY_DEADLINE_S):
            await process.wait()
    except TimeoutError:
        process.kill()
        raise AssertionError("the gateway did not stop") from None
    assert process.returncode is not None
    return process.returncode, _log_path(config).read_text(encoding="utf-8", errors="replace")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_leaves_chargers_at_their_failsafe_and_the_store_consistent(
    tmp_path: Path,
    csms: OcppPackageCsms,
    chargers: dict[str, SimulatedCharger],
    signum: int,
) -> None:
    config = _config(tmp_path, csms.url, chargers)
    process = await _start_gateway(config)
    try:
        for charger_id in SESSION_CHARGERS:
            # Registered upstream first: an identifier presented before that is decided
            # offline, and refused (not in the local list).
            await csms.wait_for_action(charger_id, "StatusNotification")
            chargers[charger_id].plug_in(rfid=f"TAG-{charger_id}", max_current_a=16.0)
        for charger_id in SESSION_CHARGERS:
            await csms.wait_for_action(charger_id, "StartTransaction")
            # Balanced under a 63 A fuse, both get (nearly) their 16 A.
            await _until(
                _charging(chargers[charger_id]),
                f"{charger_id} offered {CHARGING_A:g} A",
            )
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        _, log = await process.communicate()
        print(log.decode()[-5000:])  # the gateway's log, shown with the failure
        raise

    code, errors = await _stop(process, signum, config)

    assert code == 0, errors[-3000:]
    assert "Traceback" not in errors
    assert "chargers left at their failsafe current" in errors
    # Plain or JSON log lines: "written=3" or '"written": 3'.
    assert re.search(r"\bwritten\W+3\b", errors), errors[-3000:]
    for charger_id in SESSION_CHARGERS:
        assert chargers[charger_id].offered_a == FAILSAFE_A[charger_id], charger_id
    # The idle charger offered nothing: it stays at 0, not raised to its failsafe of 10 A, so
    # no session starts at full failsafe while nobody balances.
    assert chargers["CP-3"].setpoint_a == 0.0
    assert chargers["CP-3"].offered_a == 0.0
    # Still plugged in, still in a session; CP-2 paused rather than unplugged.
    assert chargers["CP-2"].ev is not None

    store = tmp_path / "state" / "evgw.sqlite3"
    # Closed cleanly: SQLite folds the write-ahead log back into the database file at the last
    # close and deletes it.
    assert not store.with_name("evgw.sqlite3-wal").exists()
    db = sqlite3.connect(store)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        open_sessions = {
            row[0] for row in db.execute("SELECT charger_id FROM sessions WHERE stopped_at IS NULL")
        }
        transactions = {
            row[0]
            for row in db.execute(
                "SELECT charge_point FROM ocpp_transactions WHERE transaction_id IS NOT NULL"
            )
        }
    finally:
        db.close()
    assert open_sessions == set(SESSION_CHARGERS)
    assert transactions == set(SESSION_CHARGERS)

    if signum != signal.SIGTERM:
        return
    # The next start resumes the sessions (no second StartTransaction) and raises the
    # current again, from the failsafe 6 A and from the pause.
    process = await _start_gateway(config)
    try:
        for charger_id in SESSION_CHARGERS:
            await _until(
                _charging(chargers[charger_id]),
                f"{charger_id} offered {CHARGING_A:g} A again",
            )
    finally:
        code, errors = await _stop(process, signal.SIGTERM, config)
    assert code == 0, errors[-3000:]
    assert "resumed open session" in errors
    for charger_id in SESSION_CHARGERS:
        starts = [m for m in csms.received[charger_id] if m.action == "StartTransaction"]
        assert len(starts) == 1, charger_id


async def test_a_charger_that_does_not_answer_does_not_hold_up_the_others() -> None:
    """`leave_chargers_at_failsafe` in-process: one charger answers, one went offline before
    the stop (skipped), one stops answering at the stop (given up after the budget, reported,
    the others written all the same)."""
    simulators = {name: SimulatedCharger("generic") for name in ("OK", "GONE", "MUTE")}
    links = []
    site = Site()
    try:
        for name, simulator in simulators.items():
            port = await simulator.start()
            link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=30.0)
            links.append(link)
            site.add_charger(
                ChargerSpec(name, max_current_a=16.0, poll_interval_s=0.1),
                ModbusCharger(link, None, simulator.profile, name=name),
            )
            # A vehicle with a card: the site (free vend here) starts a session at 16 A.
            simulator.plug_in(rfid=f"TAG-{name}", max_current_a=16.0)
        running = asyncio.create_task(site.run())
        await _until(
            lambda: all(simulator.offered_a == 16.0 for simulator in simulators.values()),
            "every charger charging",
        )
        await simulators["GONE"].stop()
        await _until(lambda: not site.connector("GONE").online, "GONE seen offline")
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        simulators["MUTE"].response_delay_s = 60.0

        outcome = await leave_chargers_at_failsafe(
            site, {"OK": 6.0, "GONE": 6.0, "MUTE": 6.0}, budget_s=1.0
        )

        assert outcome.written == {"OK": 6.0}
        assert outcome.unreachable == ["GONE"]
        assert outcome.failed == {"MUTE": "no answer within 1 s"}
        assert simulators["OK"].offered_a == 6.0
    finally:
        for link in links:
            await link.close()
        for simulator in simulators.values():
            await simulator.stop()
