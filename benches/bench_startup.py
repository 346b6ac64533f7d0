"""Start-up time and resident memory of `evgw run` on a 500-charger site.

The gateway runs as an installer runs it: `python -m gateway run --config FILE`, its own
process, a configuration of 500 Modbus TCP chargers (the generic profile, 10 Modbus TCP
gateways with 50 unit ids behind each, as `benches/bench_poll.py`'s 10 x 50 topology) under a
two-level fuse tree with a site meter, each charger its own OCPP 1.6 charge point upstream.
The simulators and a central system (`gateway.demo.central_system`, accepting everything) run
in another process, so their CPU and memory are not the gateway's.

Measured from the exec of the gateway process (the bench's monotonic clock; CLOCK_MONOTONIC is
shared by the processes of one machine):

    running    the gateway's "gateway running" log line: configuration checked, profiles
               loaded, store opened and migrated, every driver and station built
    ready      every one of the 500 chargers read at least once over Modbus (the simulators
               record each charger's first read): the gateway sees the whole site. This is
               the start-up time the issue's "under 2 s" is about.
    upstream   every charger registered upstream: BootNotification accepted and its first
               StatusNotification received by the central system
    stop       SIGTERM to exit (every charger left at its failsafe current, store closed)

and, after the site has settled (polling, balancing and heartbeats running for a while), the
gateway's resident memory from /proc/<pid>/status: VmRSS (now) and VmHWM (peak). For
context, the same for `python -c pass` (the interpreter alone) and `python -c "import
gateway.runtime"` (the gateway's code loaded, nothing running), and `evgw --version` (the
command line's import cost). Nothing here asserts a speed or a size; the figures go to the
report.

    python benches/bench_startup.py            # full form: 5 runs, 30 s settling
    python benches/bench_startup.py --quick --report benches/report-startup.txt
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO

HOST = "127.0.0.1"
PROFILE = "generic"
SERVERS = 10
UNITS = 50
CHARGERS = SERVERS * UNITS
DEADLINE_S = 120.0
"""A bound against a gateway that never gets ready, not a speed limit."""

# ---------------------------------------------------------------- the simulator process


def simulate(conn: Connection) -> None:
    """Serve the site's chargers, a site meter and a central system; report their ports, then
    the monotonic time each charger was first read and each station first reported a status,
    until told to stop."""
    # Imported here: the parent process measures the gateway, not itself.
    import uvloop
    from pymodbus.constants import ExcCodes

    from gateway.demo.central_system import DemoCentralSystem
    from gateway.modbus import SimulatedCharger, SimulatorServer

    logging.basicConfig(level=logging.ERROR)
    first_read: dict[str, float] = {}
    first_status: dict[str, float] = {}

    class CountedCharger(SimulatedCharger):
        """Notes when the gateway first read it."""

        def __init__(self, name: str, unit_id: int) -> None:
            super().__init__(PROFILE, unit_id=unit_id)
            self.charger_name = name

        async def handle_read(
            self, func_code: int, address: int, count: int
        ) -> list[int] | ExcCodes:
            first_read.setdefault(self.charger_name, time.monotonic())
            return await super().handle_read(func_code, address, count)

    def status_seen(identity: str, _connector: int, _status: str) -> None:
        first_status.setdefault(identity, time.monotonic())

    async def main(quiet: TextIO) -> None:
        csms = DemoCentralSystem(quiet, heartbeat_interval_s=60)
        csms.on_status = status_seen
        csms_port = await csms.start()
        servers = []
        ports = []
        for s in range(SERVERS):
            chargers = [CountedCharger(charger_id(s, u), u) for u in range(1, UNITS + 1)]
            server = SimulatorServer(chargers)
            ports.append(await server.start(HOST, 0))
            servers.append(server)
        conn.send((csms_port, ports))
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "stop":
                break
            conn.send((dict(first_read), dict(first_status)))
            first_read.clear()
            first_status.clear()
        for server in servers:
            await server.stop()
        await csms.stop()

    # The central system prints a line per message: to nowhere.
    with open(os.devnull, "w", encoding="utf-8") as quiet:
        uvloop.run(main(quiet))


def charger_id(server: int, unit: int) -> str:
    return f"CP-{server:02d}-{unit:02d}"


class Site:
    """The simulator process."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=simulate, args=(child,), daemon=True)
        self._process.start()
        if not self._conn.poll(DEADLINE_S):
            self._process.kill()
            raise SystemExit("the simulators did not start")
        self.csms_port, self.ports = self._conn.recv()

    def first_contacts(self) -> tuple[dict[str, float], dict[str, float]]:
        """(charger id → first read, charger id → first status upstream) since the last call."""
        self._conn.send("report")
        contacts: tuple[dict[str, float], dict[str, float]] = self._conn.recv()
        return contacts

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def site_config(site: Site, store: Path) -> str:
    """The 500-charger configuration: two boards under the grid connection, a realistic
    failsafe (6 A on every other charger, single-phase, spread over the phases)."""
    lines = [
        "[gateway]",
        f'store = "{store}"',
        'log_level = "INFO"',
        "[upstream]",
        f'url = "ws://{HOST}:{site.csms_port}/ocpp"',
        "heartbeat_interval_s = 60",
        "[[circuits]]",
        'id = "grid"',
        "max_current_a = 4000",
        "[[circuits]]",
        'id = "board-a"',
        'parent = "grid"',
        "max_current_a = 2000",
        "[[circuits]]",
        'id = "board-b"',
        'parent = "grid"',
        "max_current_a = 2000",
    ]
    for s, port in enumerate(site.ports):
        for u in range(1, UNITS + 1):
            lines += [
                "[[chargers]]",
                f'id = "{charger_id(s, u)}"',
                f'profile = "{PROFILE}"',
                f'host = "{HOST}"',
                f"port = {port}",
                f"unit_id = {u}",
                f'circuit = "board-{"a" if s < SERVERS // 2 else "b"}"',
                "max_current_a = 16",
                f"failsafe_current_a = {6 if u % 2 else 0}",
            ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- measurements


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


_SELF_MEMORY = (
    "import pathlib;"
    "s=pathlib.Path('/proc/self/status').read_text().splitlines();"
    "print([int(l.split()[1]) for l in s if l.startswith('VmHWM')][0])"
)


def baseline(code: str) -> tuple[float, int]:
    """(seconds from exec to exit, peak resident kB) of `python -c <code>`."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{_SELF_MEMORY}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.monotonic() - started, int(done.stdout.split()[-1])


def command_time(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, *args], capture_output=True, check=True)
    return time.monotonic() - started


@dataclass
class Run:
    running_s: float
    ready_s: float
    upstream_s: float
    stop_s: float
    rss_kb: int
    hwm_kb: int
    exit_code: int


def start_once(site: Site, config: Path, settle_s: float) -> Run:
    site.first_contacts()  # forget an earlier run's contacts
    # The log goes to a file, as to journald: a pipe this process drains would slow the
    # gateway, whose logging writes synchronously, by how fast it is read.
    log_path = config.with_name("evgw.log")
    running_at: float | None = None
    with log_path.open("w", encoding="utf-8") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    first_read: dict[str, float] = {}
    first_status: dict[str, float] = {}
    try:
        while len(first_read) < CHARGERS or len(first_status) < CHARGERS:
            if time.monotonic() - started > DEADLINE_S or process.poll() is not None:
                tail = log_path.read_text(encoding="utf-8").splitlines()[-20:]
                raise SystemExit(
                    f"not ready: {len(first_read)} chargers read, {len(first_status)} upstream;"
                    f" exit {process.poll()}\n" + "\n".join(tail)
                )
            time.sleep(0.05)  # the resolution of `running`; the others are exact
            if running_at is None and "gateway running" in log_path.read_text("utf-8"):
                running_at = time.monotonic()
            reads, statuses = site.first_contacts()
            for name, at in reads.items():
                first_read.setdefault(name, at)
            for name, at in statuses.items():
                first_status.setdefault(name, at)
        time.sleep(settle_s)
        rss, hwm = memory_kb(process.pid)
        stop_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
        stopped = time.monotonic()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Run(
        running_s=(running_at if running_at is not None else float("nan")) - started,
        ready_s=max(first_read.values()) - started,
        upstream_s=max(first_status.values()) - started,
        stop_s=stopped - stop_at,
        rss_kb=rss,
        hwm_kb=hwm,
        exit_code=exit_code,
    )


def run_benchmark(quick: bool) -> str:
    runs_wanted = 2 if quick else 5
    settle_s = 5.0 if quick else 30.0
    python_pass = [baseline("pass") for _ in range(3)]
    python_import = [baseline("import gateway.runtime") for _ in range(3)]
    version = [command_time("-m", "gateway", "--version") for _ in range(3)]
    site = Site()
    runs = []
    try:
        with tempfile.TemporaryDirectory(prefix="evgw-bench-startup-") as directory:
            config = Path(directory) / "evgw.toml"
            config.write_text(site_config(site, Path(directory) / "evgw.sqlite3"), "utf-8")
            check = command_time("-m", "gateway", "check-config", str(config))
            for _ in range(runs_wanted):
                runs.append(start_once(site, config, settle_s))
    finally:
        site.stop()

    def median(values: list[float]) -> float:
        return statistics.median(values)

    def figures(name: str, values: list[float]) -> str:
        return (
            f"  {name:<44} median {median(values):6.2f} s"
            f"   (min {min(values):.2f}, max {max(values):.2f})"
        )

    lines = [
        f"evgw start-up on a {CHARGERS}-charger site ({SERVERS} Modbus TCP servers x {UNITS}"
        f" unit ids, {PROFILE} profile, OCPP 1.6 per charger, 3 circuits)",
        f"{platform.python_implementation()} {platform.python_version()},"
        f" {platform.machine()}, {os.cpu_count()} CPUs; {len(runs)} runs,"
        f" memory read after {settle_s:g} s settled" + (" (--quick)" if quick else ""),
        "",
        "time from exec (s)",
        figures("python -c pass", [t for t, _ in python_pass]),
        figures('python -c "import gateway.runtime"', [t for t, _ in python_import]),
        figures("evgw --version", version),
        f"  {'evgw check-config (500 chargers)':<44} {check:13.2f} s",
        figures('evgw run: "gateway running" logged', [r.running_s for r in runs]),
        figures("evgw run: ready (all 500 chargers read)", [r.ready_s for r in runs]),
        figures("evgw run: all 500 registered upstream", [r.upstream_s for r in runs]),
        figures("evgw run: SIGTERM to exit", [r.stop_s for r in runs]),
        "",
        "resident memory (MB)",
        f"  {'python -c pass (peak)':<44} {median([m for _, m in python_pass]) / 1024:8.1f}",
        f"  {'import gateway.runtime (peak)':<44}"
        f" {median([m for _, m in python_import]) / 1024:8.1f}",
        f"  {'evgw run, settled: VmRSS':<44} {median([r.rss_kb for r in runs]) / 1024:8.1f}",
        f"  {'evgw run, settled: VmHWM (peak)':<44} {median([r.hwm_kb for r in runs]) / 1024:8.1f}",
        "",
        f"exit codes after SIGTERM: {sorted({r.exit_code for r in runs})}",
        "",
    ]
    notes = textwrap.dedent(
        """\
        ready = every charger read once over Modbus; running = the log line after the store is
        open and every driver and station is built; upstream = BootNotification accepted and
        a first StatusNotification for every charger. Nothing is asserted about speed.
        """
    )
    return "\n".join(lines) + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 runs, 5 s settling, as CI runs it")
    parser.add_argument("--report", type=argparse.FileType("w"), help="also write the report")
    args = parser.parse_args()
    report = run_benchmark(args.quick)
    print(report, end="")
    if args.report is not None:
        args.report.write(report)


if __name__ == "__main__":
    main()
