"""Chaos: hundreds of transactions while the uplink is cut and the gateway is killed.

Ten simulated Modbus chargers (real pymodbus servers, in this process so they outlive the
gateway) see EVs plug in with an RFID tag, charge for a few seconds and leave. The gateway
runs as `evgw run` in a child process on a real SQLite store. At random moments the test
either cuts the uplink (the central system, built on the `ocpp` package, goes down and comes
back on the same port) or kills the gateway with SIGKILL and starts it again on the same
store. At the end everything is brought up, the queue drains, and the central system's record
is checked against the simulators and the store:

- every transaction the gateway stored reached the central system: one Start, its periodic
  MeterValues, one Stop, in chronological order, with the original timestamps;
- every energy value (meterStart, each sampled register, meterStop) is one the simulated
  charger's register really held around that timestamp, and meterStop is exactly the register
  when the EV left;
- every EV visit that drew current has its transaction, unless the EV left and the next
  arrived with no read of the charger in between (the gateway down or starting): a charger
  that keeps no session counter then shows one continuous visit, billed as one;
- nothing arrived twice, except a message whose answer the gateway had not yet written to its
  store when it was killed (its re-send after the restart is at-least-once delivery, as OCPP
  allows), and a message answered while the central system was shutting down (the answer was
  lost with the connection, so the gateway rightly sends it again).

`EVGW_CHAOS_EPISODES` raises the number of EV visits (default 260; about one in six is
merged with the one before by a kill, so at least 200 transactions remain) for a longer run.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection

from gateway.modbus import SimulatedCharger
from gateway.store import Store
from tests.ocpp.central_system_ocpp import OcppPackageCsms, Received

CHARGERS = 10
EPISODES = int(os.environ.get("EVGW_CHAOS_EPISODES", "260"))
MIN_TRANSACTIONS = 200
SPEED = 10.0
"""Simulated seconds per real second: about 30 Wh per real second at 16 A on three phases,
so consecutive samples differ and a wrong reading cannot pass for a right one."""
SEED = int(os.environ.get("EVGW_CHAOS_SEED", "20261123"))
TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")
SAMPLE_BEFORE_S = 1.5
"""A reading is taken at a poll, up to one poll interval (0.2 s) and a sample interval's
rounding before the timestamp it carries; generous against a loaded machine."""
SAMPLE_AFTER_S = 0.3


def charger_id(index: int) -> str:
    return f"CH-{index + 1:02d}"


@dataclass
class Arrival:
    """One CALL as the central system recorded it, with the connection it came on."""

    identity: str
    connection: int
    at: float
    message: Received


@dataclass
class ConnectionLife:
    identity: str
    opened_at: float
    closed_at: float | None = None


@dataclass
class ChaosCsms(OcppPackageCsms):
    """The recording central system, also noting which connection each CALL came on and
    when each connection ended (to tell a re-send after a kill from a real duplicate)."""

    arrivals: list[Arrival] = field(default_factory=list)
    connections: list[ConnectionLife] = field(default_factory=list)
    _current: dict[str, int] = field(default_factory=dict)

    def record(self, identity: str, message: Received) -> None:
        self.arrivals.append(Arrival(identity, self._current[identity], time.time(), message))
        super().record(identity, message)

    async def _serve(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        identity = websocket.request.path.rsplit("/", 1)[-1]
        life = ConnectionLife(identity, time.time())
        self.connections.append(life)
        self._current[identity] = len(self.connections) - 1
        try:
            await super()._serve(websocket)
        finally:
            life.closed_at = time.time()


@dataclass
class Episode:
    """One EV visit at one charger, as the simulator saw it."""

    charger: str
    tag: str
    plugged_at: float
    energy_at_plug_wh: float
    unplugged_at: float | None = None
    energy_at_unplug_wh: float | None = None


@dataclass
class EnergyTrace:
    """Each charger's energy register over wall-clock time, sampled often."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, at: float, value: float) -> None:
        self.times.append(at)
        self.values.append(value)

    def range_between(self, start: float, end: float) -> tuple[float, float]:
        """The lowest and highest value the register can have shown in [start, end]: the
        register only grows, so the sample at or before `start` and the one at or after
        `end` bound it."""
        low_index = max(bisect.bisect_right(self.times, start) - 1, 0)
        high_index = min(bisect.bisect_left(self.times, end), len(self.times) - 1)
        return self.values[low_index], self.values[high_index]


class GatewayProcess:
    """`evgw run` as a child process that can be killed and started again."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: asyncio.subprocess.Process | None = None
        self.up_intervals: list[tuple[float, float | None]] = []
        self.kills: list[float] = []

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway",
                "run",
                "--config",
                str(self.config),
                stdout=log,
                stderr=log,
            )
        self.up_intervals.append((time.time(), None))

    def _mark_down(self) -> None:
        started, _ = self.up_intervals[-1]
        self.up_intervals[-1] = (started, time.time())

    async def kill(self) -> None:
        assert self.process is not None
        self.kills.append(time.time())
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self._mark_down()

    async def stop(self) -> int:
        """SIGTERM and wait: the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            code = await self.process.wait()
        self._mark_down()
        return code

    def up_during(self, start: float, end: float) -> float:
        """Seconds the gateway process ran within [start, end]."""
        total = 0.0
        for began, ended in self.up_intervals:
            total += max(0.0, min(end, ended or end) - max(start, began))
        return total


def write_config(path: Path, store: Path, csms_url: str, ports: list[int]) -> None:
    chargers = "".join(
        f"""
[[chargers]]
id = "{charger_id(index)}"
host = "127.0.0.1"
port = {port}
poll_interval_s = 0.2
max_current_a = 16
"""
        for index, port in enumerate(ports)
    )
    path.write_text(
        f"""
[gateway]
store = "{store}"
log_level = "WARNING"

[upstream]
url = "{csms_url}"
heartbeat_interval_s = 60
meter_value_sample_interval_s = 1
{chargers}"""
    )


class WatchedCharger(SimulatedCharger):
    """A simulated charger that notes when the gateway read it: the gateway can only know of
    an EV leaving if it read the charger between the EV leaving and the next one coming."""

    def __init__(self) -> None:
        super().__init__("generic", speed=SPEED)
        self.reads: list[float] = []

    async def handle_read(self, func_code: int, address: int, count: int) -> Any:
        self.reads.append(time.time())
        return await super().handle_read(func_code, address, count)

    def read_between(self, start: float, end: float) -> bool:
        index = bisect.bisect_right(self.reads, start)
        return index < len(self.reads) and self.reads[index] < end


@contextlib.asynccontextmanager
async def simulators() -> AsyncIterator[list[WatchedCharger]]:
    chargers = [WatchedCharger() for _ in range(CHARGERS)]
    for charger in chargers:
        await charger.start("127.0.0.1", 0)
    try:
        yield chargers
    finally:
        for charger in chargers:
            await charger.stop()


async def until(condition: Callable[[], bool], deadline_s: float) -> None:
    async with asyncio.timeout(deadline_s):
        while not condition():  # noqa: ASYNC110 - the states polled offer no event
            await asyncio.sleep(0.1)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def message_time(message: Received) -> float:
    if message.action == "MeterValues":
        return parse_time(message.payload["meter_value"][0]["timestamp"])
    return parse_time(message.payload["timestamp"])


def dedup_key(arrival: Arrival) -> str:
    """What makes two CALLs the same message: the payload, except the transactionId the
    central system assigns in its answer to a Start (a re-sent Start is answered anew)."""
    payload = dict(arrival.message.payload)
    if arrival.message.action == "StartTransaction":
        payload.pop("transaction_id", None)
    return json.dumps([arrival.identity, arrival.message.action, payload], sort_keys=True)


def energy_samples(message: Received) -> list[tuple[float, float]]:
    """(timestamp, Wh) of every energy register sample in a MeterValues."""
    found = []
    for meter_value in message.payload["meter_value"]:
        for sample in meter_value["sampled_value"]:
            if sample.get("measurand", "Energy.Active.Import.Register") == (
                "Energy.Active.Import.Register"
            ):
                factor = 1000.0 if sample.get("unit") == "kWh" else 1.0
                found.append(
                    (parse_time(meter_value["timestamp"]), float(sample["value"]) * factor)
                )
    return found


@dataclass
class Findings:
    transactions: int = 0
    orphan_starts: int = 0
    duplicates_after_kill: int = 0
    duplicates_after_cut: int = 0
    energy_checks: int = 0
    episodes_checked: int = 0
    merged_visits: int = 0
    idle_visits: int = 0
    unbilled_wh: float = 0.0
    problems: list[str] = field(default_factory=list)


def judge_duplicates(
    csms: ChaosCsms, gateway: GatewayProcess, cuts: list[tuple[float, float]], findings: Findings
) -> dict[str, Arrival]:
    """First arrival of every distinct transaction message; each repeat must be explained."""
    first: dict[str, Arrival] = {}
    last_on_connection: dict[int, Arrival] = {}
    for arrival in csms.arrivals:
        if arrival.message.action in TRANSACTION_ACTIONS:
            last_on_connection[arrival.connection] = arrival
    for arrival in csms.arrivals:
        if arrival.message.action not in TRANSACTION_ACTIONS:
            continue
        key = dedup_key(arrival)
        original = first.setdefault(key, arrival)
        if original is arrival:
            continue
        # A repeat is explained only if the original was the last transaction message on its
        # connection (its answer may not have been recorded) and that connection ended by a
        # kill of the gateway or a cut of the central system.
        life = csms.connections[original.connection]
        closed = life.closed_at or float("inf")
        last = last_on_connection[original.connection] is original
        killed = any(kill - 0.1 <= closed <= kill + 5.0 for kill in gateway.kills)
        cut = any(start - 0.1 <= closed <= start + 5.0 for start, _ in cuts)
        if last and killed:
            findings.duplicates_after_kill += 1
        elif last and cut:
            findings.duplicates_after_cut += 1
        else:
            findings.problems.append(
                f"{arrival.identity}: {arrival.message.action} arrived twice without a kill"
                f" or cut to explain it (last on its connection: {last})"
            )
    return first


def check_record(
    csms: ChaosCsms,
    gateway: GatewayProcess,
    cuts: list[tuple[float, float]],
    episodes: list[Episode],
    traces: dict[str, EnergyTrace],
    stored_sessions: dict[str, Any],
    chargers: list[WatchedCharger],
) -> Findings:
    findings = Findings()
    first = judge_duplicates(csms, gateway, cuts, findings)
    distinct = sorted(first.values(), key=lambda a: csms.arrivals.index(a))

    for index in range(CHARGERS):
        identity = charger_id(index)
        mine = [a for a in distinct if a.identity == identity]
        # In order: the transaction queue sends in the order the messages were made.
        times = [message_time(a.message) for a in mine]
        if any(later < earlier for earlier, later in itertools.pairwise(times)):
            findings.problems.append(f"{identity}: transaction messages out of order")
        starts = {
            a.message.payload["transaction_id"]: a
            for a in mine
            if a.message.action == "StartTransaction"
        }
        stops: dict[int, Arrival] = {}
        meter_values: dict[int, list[Arrival]] = {}
        for arrival in mine:
            payload = arrival.message.payload
            if arrival.message.action == "StopTransaction":
                if payload["transaction_id"] in stops:
                    findings.problems.append(
                        f"{identity}: two Stops for {payload['transaction_id']}"
                    )
                stops[payload["transaction_id"]] = arrival
            elif arrival.message.action == "MeterValues":
                meter_values.setdefault(payload["transaction_id"], []).append(arrival)
        for transaction_id, start in starts.items():
            stop = stops.get(transaction_id)
            if stop is None:
                # A Start the gateway re-sent after a kill: its first answer was lost, so the
                # central system's first transactionId is never used again.
                if str(transaction_id) not in stored_sessions:
                    findings.orphan_starts += 1
                else:
                    findings.problems.append(
                        f"{identity}: transaction {transaction_id} has no Stop"
                    )
                continue
            findings.transactions += 1
            session = stored_sessions.get(str(transaction_id))
            if session is None:
                findings.problems.append(
                    f"{identity}: transaction {transaction_id} not in the store"
                )
            elif (round(session.meter_start_wh), round(session.meter_stop_wh)) != (
                start.message.payload["meter_start"],
                stop.message.payload["meter_stop"],
            ):
                findings.problems.append(f"{identity}: {transaction_id} differs from the store")
            order = [start, *meter_values.get(transaction_id, []), stop]
            positions = [csms.arrivals.index(a) for a in order]
            if positions != sorted(positions):
                findings.problems.append(f"{identity}: {transaction_id} not Start, values, Stop")
            trace = traces[identity]
            readings = [
                (message_time(start.message), float(start.message.payload["meter_start"])),
                *(
                    s
                    for a in meter_values.get(transaction_id, [])
                    for s in energy_samples(a.message)
                ),
                (message_time(stop.message), float(stop.message.payload["meter_stop"])),
            ]
            for at, value in readings:
                low, high = trace.range_between(at - SAMPLE_BEFORE_S, at + SAMPLE_AFTER_S)
                findings.energy_checks += 1
                if not low - 1.0 <= value <= high + 1.0:
                    findings.problems.append(
                        f"{identity}: {transaction_id} reported {value} Wh at {at:.3f},"
                        f" the register held {low:.1f}..{high:.1f} Wh"
                    )
            if stop.message.payload.get("reason") == "EVDisconnected":
                left = [
                    e
                    for e in episodes
                    if e.charger == identity
                    and e.unplugged_at is not None
                    and e.plugged_at <= message_time(stop.message) + SAMPLE_AFTER_S
                    and e.unplugged_at <= message_time(stop.message) + SAMPLE_AFTER_S
                ]
                if left and left[-1].energy_at_unplug_wh is not None:
                    expected = round(left[-1].energy_at_unplug_wh)
                    if stop.message.payload["meter_stop"] != expected:
                        findings.problems.append(
                            f"{identity}: {transaction_id} meterStop"
                            f" {stop.message.payload['meter_stop']}, the EV left at {expected}"
                        )

    # Every EV visit that drew current has its transaction: a Start from that charger with
    # that tag inside the visit.
    for episode in episodes:
        assert episode.unplugged_at is not None
        assert episode.energy_at_unplug_wh is not None
        delivered = episode.energy_at_unplug_wh - episode.energy_at_plug_wh
        if delivered <= 0:
            # No current offered: the gateway never enabled this visit (it was down).
            findings.idle_visits += 1
            continue
        previous = [
            e
            for e in episodes
            if e.charger == episode.charger
            and e.unplugged_at is not None
            and e.unplugged_at <= episode.plugged_at
        ]
        charger = chargers[int(episode.charger.removeprefix("CH-")) - 1]
        if previous and not charger.read_between(
            previous[-1].unplugged_at or 0, episode.plugged_at
        ):
            # The EV left and the next arrived with no read of the charger in between (the
            # gateway was down or starting): a charger that keeps no session counter shows
            # the gateway one continuous visit, billed as one.
            findings.merged_visits += 1
            continue
        findings.episodes_checked += 1
        matching = [
            a
            for a in distinct
            if a.identity == episode.charger
            and a.message.action == "StartTransaction"
            and a.message.payload["id_tag"] == episode.tag
            and episode.plugged_at - 0.1 <= message_time(a.message) <= episode.unplugged_at + 0.1
        ]
        if not matching:
            near_kills = [round(episode.plugged_at - k, 1) for k in gateway.kills]
            near_cuts = [round(episode.plugged_at - c, 1) for c, _ in cuts]
            findings.problems.append(
                f"{episode.charger}: the visit at {episode.plugged_at:.1f} charged"
                f" {delivered:.0f} Wh but has no transaction (seconds since kills"
                f" {[k for k in near_kills if abs(k) < 10]},"
                f" cuts {[c for c in near_cuts if abs(c) < 10]})"
            )
    billed = 0.0
    for session in stored_sessions.values():
        billed += session.meter_stop_wh - session.meter_start_wh
    delivered_total = sum((e.energy_at_unplug_wh or 0.0) - e.energy_at_plug_wh for e in episodes)
    findings.unbilled_wh = delivered_total - billed
    return findings


async def test_transactions_survive_uplink_cuts_and_gateway_kills(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    csms = ChaosCsms(boot_answers=[("Accepted", 60)])
    await csms.start()
    cuts: list[tuple[float, float]] = []
    episodes: list[Episode] = []
    traces = {charger_id(i): EnergyTrace() for i in range(CHARGERS)}
    store_path = tmp_path / "evgw.sqlite3"
    async with simulators() as chargers:
        config = tmp_path / "chaos.toml"
        write_config(config, store_path, csms.url, [c.port or 0 for c in chargers])
        gateway = GatewayProcess(config, tmp_path / "gateway.log")
        stop_sampling = asyncio.Event()

        async def sample_energy() -> None:
            while not stop_sampling.is_set():
                now = time.time()
                for index, charger in enumerate(chargers):
                    traces[charger_id(index)].add(now, charger.energy_wh)
                await asyncio.sleep(0.05)

        started_visits = 0

        async def visits(index: int) -> None:
            nonlocal started_visits
            charger = chargers[index]
            identity = charger_id(index)
            tag = f"TAG-{index + 1:04d}"
            visit_rng = random.Random(SEED + index)
            while started_visits < EPISODES:
                started_visits += 1
                await asyncio.sleep(visit_rng.uniform(0.5, 1.5))
                charger.plug_in(rfid=tag, energy_needed_wh=1e9)
                episode = Episode(identity, tag, time.time(), charger.energy_wh)
                episodes.append(episode)
                await asyncio.sleep(visit_rng.uniform(2.5, 5.0))
                energy = charger.energy_wh
                charger.unplug()
                episode.unplugged_at = time.time()
                episode.energy_at_unplug_wh = energy

        async def chaos() -> None:
            while started_visits < EPISODES:
                await asyncio.sleep(rng.uniform(2.0, 6.0))
                if rng.random() < 0.5:
                    began = time.time()
                    await csms.stop()
                    await asyncio.sleep(rng.uniform(1.0, 6.0))
                    await csms.start()
                    cuts.append((began, time.time()))
                else:
                    await gateway.kill()
                    await asyncio.sleep(rng.uniform(0.2, 2.5))
                    await gateway.start()

        sampler = asyncio.create_task(sample_energy())
        await gateway.start()
        # Warm-up: every charger's tag is authorized online once, so the cache can admit it
        # while the uplink is cut (LocalAuthorizeOffline).
        await until(
            lambda: all(
                any(m.action == "StatusNotification" for m in csms.received.get(charger_id(i), []))
                for i in range(CHARGERS)
            ),
            60,
        )
        for index, charger in enumerate(chargers):
            charger.plug_in(rfid=f"TAG-{index + 1:04d}", energy_needed_wh=1e9)
            episodes.append(
                Episode(charger_id(index), f"TAG-{index + 1:04d}", time.time(), charger.energy_wh)
            )
        await until(
            lambda: all(
                any(m.action == "StartTransaction" for m in csms.received.get(charger_id(i), []))
                for i in range(CHARGERS)
            ),
            60,
        )
        for index, charger in enumerate(chargers):
            energy = charger.energy_wh
            charger.unplug()
            episodes[index].unplugged_at = time.time()
            episodes[index].energy_at_unplug_wh = energy

        async with asyncio.TaskGroup() as group:
            for index in range(CHARGERS):
                group.create_task(visits(index))
            group.create_task(chaos())

        # Wind-down: everything up, every EV gone; wait for the queues to drain.
        if gateway.process is None or gateway.process.returncode is not None:
            await gateway.start()

        def drained() -> bool:
            quiet = time.time() - max((a.at for a in csms.arrivals), default=0.0) > 4.0
            return quiet

        await until(drained, 300)
        assert await gateway.stop() == 0
        stop_sampling.set()
        await sampler

    await csms.stop()
    store = await Store.open(store_path)
    try:
        sessions = await store.sessions()
        left_in_queue = 0
        for index in range(CHARGERS):
            left_in_queue += len(await store.outbox(charger_id(index)))
    finally:
        await store.close()
    open_sessions = [s for s in sessions if s.active]
    stored = {s.upstream_transaction_id: s for s in sessions if s.upstream_transaction_id}
    findings = check_record(csms, gateway, cuts, episodes, traces, stored, chargers)
    print(
        f"\nchaos: {len(episodes)} EV visits, {findings.transactions} transactions,"
        f" {len(cuts)} uplink cuts, {len(gateway.kills)} SIGKILLs;"
        f" {findings.energy_checks} energy values checked against the simulators,"
        f" {findings.episodes_checked} visits checked for their transaction"
        f" ({findings.merged_visits} merged with the one before, unseen by the gateway;"
        f" {findings.idle_visits} never offered current);"
        f" repeats: {findings.duplicates_after_kill} after a kill,"
        f" {findings.duplicates_after_cut} after a cut, {findings.orphan_starts} re-sent Starts;"
        f" energy delivered outside any session: {findings.unbilled_wh:.1f} Wh;"
        f" problems: {len(findings.problems)}"
    )
    for problem in findings.problems[:30]:
        print("  ", problem)
    assert not open_sessions, f"sessions left open: {open_sessions}"
    assert left_in_queue == 0
    assert findings.transactions >= MIN_TRANSACTIONS
    assert len(cuts) >= 5
    assert len(gateway.kills) >= 5
    assert findings.problems == []
    assert findings.unbilled_wh > -1.0, "billed more energy than the chargers delivered"
