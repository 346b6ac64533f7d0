"""`evgw`: the command line.

    evgw demo [--chargers N] [--duration S]   a simulated site with a local central system
    evgw run --config FILE                    the gateway, from a TOML configuration
    evgw simulate --config FILE [--duration S] that configuration on simulated hardware
    evgw check-config FILE                    check a configuration without starting anything
    evgw status [--url URL] [--token T] [--json]  a live summary from a running gateway's API
    evgw diagnostics --config FILE [--output PATH] [--url URL --token T]  a diagnostics bundle

Exit codes: 0 done (also after Ctrl-C/SIGTERM), 2 usage or configuration error, 1 runtime
failure. `status`: 0 no problem, 1 the gateway reports a problem (an alarm, a charger
unreachable, faulted or out of service, an uplink down), 2 usage or token refused, 3 cannot
reach it (`gateway/api/status_report.py`). The event loop is uvloop where it is installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import io
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

from gateway import __version__
from gateway.config import ConfigError, load_config
from gateway.monitoring.log_records import JsonFormatter, recent_logs, rotating_file_handler
from gateway.runtime import check_config, run_gateway
from gateway.store import StoreError

logger = logging.getLogger("gateway")

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
SHUTDOWN_GRACE_S: Final = 15.0
"""How long a stop (Ctrl-C, SIGTERM) waits for clean-up before cancelling again: longer than
a WebSocket close handshake and a store flush, well inside systemd's default 90 s stop timeout."""


# --- logging -----------------------------------------------------------------------------------

_RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class StructuredFormatter(logging.Formatter):
    """`time level logger message key=value ...`: the key=value pairs are the record's
    `extra=` fields, so lines read well on a console and parse with a regex."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
        }
        if fields:
            line += " " + " ".join(f"{key}={value!r}" for key, value in fields.items())
        return line


def configure_logging(
    level: str,
    *,
    log_format: str = "text",
    log_file: Path | None = None,
    max_bytes: int = 5_000_000,
    backups: int = 5,
) -> None:
    """Log to stderr as `log_format` ("text": key=value, "json": one object per line), also
    to `log_file` as JSON lines rotated by size when given, and keep the recent records in
    memory for the diagnostics bundle."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else StructuredFormatter())
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        try:
            handlers.append(rotating_file_handler(log_file, max_bytes=max_bytes, backups=backups))
        except OSError as error:
            raise ConfigError(
                [f"gateway.log_file: cannot open {log_file}: {error.strerror or error}"]
            ) from error
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level)
    recent_logs()
    # pymodbus logs every failed connection attempt at ERROR; the site reports reachability.
    logging.getLogger("pymodbus").setLevel(max(logging.CRITICAL, root.level))


# --- running -----------------------------------------------------------------------------------


EVENT_LOOP_ENV = "EVGW_EVENT_LOOP"
"""Set to "asyncio" to run on the standard library's event loop instead of uvloop (for
telling a uvloop problem from one of the gateway's own)."""


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    if os.environ.get(EVENT_LOOP_ENV, "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


OPEN_FILES_WANTED: Final = 65536
"""Descriptors a large site may need: per charger a WebSocket upstream and often a TCP
connection southbound, plus the store, the logs and the local servers."""


def raise_open_file_limit() -> None:
    """Raise the soft limit on open descriptors towards the hard one (what systemd's
    LimitNOFILE= or the container runtime allows): the usual soft limit of 1024 is too low for
    a site of 500 chargers on their own connections. Never fails: a refusal is logged."""
    try:
        import resource  # POSIX only
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_WANTED)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as error:
            logger.warning(
                "could not raise the open-file limit: %s", error, extra={"soft_limit": soft}
            )


def _print_tasks(_signum: int, _frame: object) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        print("evgw: no event loop running", file=sys.stderr, flush=True)
        return
    tasks = asyncio.all_tasks(loop)
    print(f"evgw: {len(tasks)} asyncio tasks", file=sys.stderr)
    for task in tasks:
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` until it ends or SIGINT/SIGTERM arrives; then cancel it and wait for its
    clean-up (sockets closed, store closed)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(work, name="main")
    stopper = asyncio.create_task(stop.wait(), name="signals")
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if not task.done():
        logger.info("stopping")
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S)
        if not done:
            # Something swallowed the cancellation or waits on a peer that does not answer:
            # say what, then cancel every task. Committed store writes are durable either way.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            logger.error(
                "shutdown still waiting after %.0f s; cancelling every task",
                SHUTDOWN_GRACE_S,
                extra={"tasks": sorted(t.get_name() for t in others)},
            )
            for other in others:
                other.cancel()
            done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S)
        if not done:
            # Better gone than deaf: a supervisor restarts a gateway that exits, not one that
            # hangs. The event loop cannot be closed with a task that will not stop.
            logger.critical("shutdown stuck; exiting without clean-up")
            logging.shutdown()
            os._exit(EXIT_FAILURE)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    task.result()


def run_until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` on a fresh event loop (uvloop if available) until it ends or is
    signalled."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_until_signalled(work))


# --- arguments ---------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evgw",
        description="Edge gateway for EV charging sites: Modbus chargers upstream as OCPP.",
    )
    parser.add_argument("--version", action="version", version=f"evgw {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a simulated site with a local central system",
        description=(
            "Start simulated Modbus chargers with EVs that plug in and out, the gateway, and a"
            " local OCPP 1.6 central system that prints every message it receives. Stops on"
            " Ctrl-C, or after --duration."
        ),
    )
    demo.add_argument(
        "--chargers", type=_positive_int, default=3, help="simulated chargers (default 3)"
    )
    demo.add_argument(
        "--duration", type=_positive_seconds, help="stop after this many seconds (default: never)"
    )
    demo.add_argument(
        "--api-port",
        type=_port,
        default=8080,
        help="the dashboard's port on 127.0.0.1 (default 8080; 0 or taken: any free port)",
    )
    demo.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the gateway's log level on stderr (default WARNING)",
    )

    simulate = commands.add_parser(
        "simulate",
        help="try a configuration on simulated chargers and meters",
        description=(
            "Run the gateway on a TOML configuration with every charger and meter replaced by"
            " a simulator on the same kind of transport (Modbus TCP, RTU over a pseudo-"
            "terminal, RTU over TCP, MQTT on a local Mosquitto), with EVs that plug in and"
            " out. Upstream is a local central system that prints every message, unless"
            " --upstream. Stops on Ctrl-C, or after --duration."
        ),
    )
    simulate.add_argument("--config", required=True, metavar="FILE", help="TOML configuration")
    simulate.add_argument(
        "--duration", type=_positive_seconds, help="stop after this many seconds (default: never)"
    )
    simulate.add_argument(
        "--speed",
        type=_positive_seconds,
        default=1.0,
        help="simulated seconds per real second for the EVs (default 1)",
    )
    simulate.add_argument(
        "--upstream",
        action="store_true",
        help="connect to the configured central system instead of a local one",
    )

    check = commands.add_parser(
        "check-config",
        help="check a configuration file completely, without starting anything",
        description=(
            "Check a TOML configuration as `evgw run` would at start-up: every key, the"
            " charger and meter profiles, the serial buses, the fuse tree and the failsafe sums,"
            " without opening a connection. Exit 0 when it is valid, 2 with one line per"
            " problem when it is not."
        ),
    )
    check.add_argument("config", metavar="FILE", help="TOML configuration file")

    status = commands.add_parser(
        "status",
        help="a live summary from a running gateway, through its local API",
        description=(
            "Ask a running gateway's local API ([api] in its config) for its state and print a"
            " summary: chargers with state and allocation, uplinks, problems. Exit 0 when it"
            " reports no problem, 1 when it reports one (an active alarm, a charger"
            " unreachable, faulted or out of service, an uplink not connected), 2 on a usage"
            " error or a refused token, 3 when the gateway cannot be reached."
        ),
    )
    status.add_argument(
        "--url", help="the gateway's API (default: $EVGW_API_URL or http://127.0.0.1:8080)"
    )
    status.add_argument(
        "--token",
        help="an API token of the read or admin role (default: $EVGW_API_TOKEN, better: other"
        " users of the machine can see a command line)",
    )
    status.add_argument("--json", action="store_true", help="print the whole snapshot as JSON")

    diagnostics = commands.add_parser(
        "diagnostics",
        help="write a diagnostics bundle (logs, config without secrets, states, alarms)",
        description=(
            "Write a diagnostics bundle (tar.gz: recent logs, the configuration with every"
            " secret removed, charger states and history, alarms, OCPP queues, versions): from"
            " a running gateway through its local API with --url and an admin token, or"
            " offline from the configuration file and its store."
        ),
    )
    diagnostics.add_argument(
        "--config", metavar="FILE", help="TOML configuration (offline, without --url)"
    )
    diagnostics.add_argument(
        "--output",
        metavar="PATH",
        help='where to write it (default: ./evgw-diagnostics-<time>.tar.gz; "-": stdout)',
    )
    diagnostics.add_argument("--url", help="a running gateway's API, e.g. http://127.0.0.1:8080")
    diagnostics.add_argument(
        "--token", help="an API token of the admin role (default: $EVGW_API_TOKEN)"
    )

    ocpi_token = commands.add_parser(
        "ocpi-token",
        help="issue an OCPI token A for a partner to register with this gateway",
        description=(
            "Issue a CREDENTIALS_TOKEN_A for an OCPI partner (created if unknown) and print"
            " it once, with our versions URL, to hand over out of band. A running gateway"
            " accepts it within seconds."
        ),
    )
    ocpi_token.add_argument("--config", required=True, metavar="FILE", help="TOML configuration")
    ocpi_token.add_argument("partner", help="the partner's name (as in [[ocpi.partners]])")

    run = commands.add_parser(
        "run",
        help="run the gateway from a configuration file",
        description="Run the gateway from a TOML configuration (see gateway/config.py).",
    )
    run.add_argument("--config", required=True, metavar="FILE", help="TOML configuration file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The `evgw` console script. Returns the exit code."""
    args = build_parser().parse_args(argv)  # exits 2 on usage errors
    # `kill -USR1 <pid>` prints every thread's stack to stderr: how to see where a gateway
    # that does not answer (or does not stop) is stuck, without stopping it.
    with contextlib.suppress(io.UnsupportedOperation, ValueError):  # stderr not a file
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    # `kill -USR2 <pid>` prints every asyncio task and where it waits.
    signal.signal(signal.SIGUSR2, _print_tasks)
    try:
        if args.command == "diagnostics":
            from gateway.diagnostics.command import run_diagnostics

            return run_diagnostics(
                config=args.config, output=args.output, url=args.url, token=args.token
            )
        if args.command == "ocpi-token":
            from gateway.ocpi.command import run_ocpi_token

            return run_ocpi_token(args.config, args.partner)
        if args.command == "status":
            from gateway.api.status_report import run_status

            return run_status(args.url, args.token, as_json=args.json)
        if args.command == "demo":
            from gateway.demo import run_demo

            configure_logging(args.log_level)
            run_until_signalled(
                run_demo(
                    chargers=args.chargers,
                    duration_s=args.duration,
                    out=sys.stdout,
                    api_port=args.api_port,
                )
            )
            return EXIT_OK
        config = load_config(args.config)
        if args.command == "check-config":
            print(check_config(config, source=str(args.config)))
            return EXIT_OK
        if args.command == "simulate":
            from gateway.simulation.site import run_simulation

            configure_logging("WARNING")
            run_until_signalled(
                run_simulation(
                    config,
                    out=sys.stdout,
                    duration_s=args.duration,
                    speed=args.speed,
                    use_configured_upstream=args.upstream,
                )
            )
            return EXIT_OK
        configure_logging(
            config.gateway.log_level,
            log_format=config.gateway.log_format,
            log_file=config.gateway.log_file,
            max_bytes=config.gateway.log_file_max_bytes,
            backups=config.gateway.log_file_backups,
        )
        raise_open_file_limit()
        run_until_signalled(run_gateway(config))
        return EXIT_OK
    except ConfigError as error:
        print(f"evgw: configuration error: {error.source}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"evgw: store error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception:
        logger.exception("evgw failed")
        return EXIT_FAILURE
