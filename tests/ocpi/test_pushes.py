"""The push queues against real eMSP peers over loopback HTTP: never blocking the caller,
one partner's outage or slowness never delaying another, bounded queues that drop the oldest,
coalescing by key, retries with back-off, and no retry of a push refused for good."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.ocpi.client import OcpiClient, OcpiReply
from gateway.ocpi.partners import Endpoint, InterfaceRole, PartnerRegistry
from gateway.ocpi.pushes import Pushes
from gateway.store import Store
from tests.ocpi.emsp_peer import RECEIVERS, VERSION, EmspPeer, Received


@dataclass
class PushRig:
    registry: PartnerRegistry
    client: OcpiClient
    peers: dict[str, EmspPeer]

    def pushes(self, **settings: object) -> Pushes:
        return Pushes(self.registry, self.client, **settings)  # type: ignore[arg-type]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[PushRig]:
    """Two registered partners, `a` and `b`, each its own peer server."""
    store = await Store.open(tmp_path / "pushes.sqlite3")
    registry = await PartnerRegistry.open(store)
    client = OcpiClient(country_code="NL", party_id="EVG", timeout_s=30.0)
    peers = {"a": EmspPeer(party_id="AAA"), "b": EmspPeer(party_id="BBB")}
    try:
        for name, peer in peers.items():
            await peer.start()
            await registry.issue_token_a(name)
            partner = registry.get(name)
            assert partner is not None
            token = f"token-for-{name}"
            peer.accepted = {token}
            await registry.registered_with(
                partner,
                token_in=f"their-{name}",
                token_out=token,
                versions_url=peer.versions_url,
                version=VERSION,
                endpoints=[
                    Endpoint(module, InterfaceRole.RECEIVER, f"{peer.base}/{VERSION}/{module}")
                    for module in RECEIVERS
                ],
                roles=[{"role": "EMSP", "country_code": "DE", "party_id": peer.party_id}],
            )
        yield PushRig(registry, client, peers)
    finally:
        for peer in peers.values():
            await peer.stop()
        await client.close()
        await store.close()


def patches(peer: EmspPeer) -> list[Received]:
    return [item for item in peer.received if item.method == "PATCH"]


async def test_push_reaches_every_partner_with_its_token_and_routing(rig: PushRig) -> None:
    pushes = rig.pushes()
    try:
        pushes.push("locations", "PATCH", "/NL/EVG/L1/E1", {"status": "CHARGING"}, key="e1")
        for name, peer in rig.peers.items():
            got = await peer.wait_for(lambda item: item.method == "PATCH")
            assert got.path == f"/ocpi/{VERSION}/locations/NL/EVG/L1/E1"
            assert got.body == {"status": "CHARGING"}
            assert got.headers["OCPI-to-party-id"] == peer.party_id
            assert got.headers["OCPI-from-country-code"] == "NL"
            assert got.headers["X-Request-ID"], name
    finally:
        await pushes.close()


async def test_a_hanging_partner_delays_nobody(rig: PushRig) -> None:
    slow, fast = rig.peers["a"], rig.peers["b"]
    slow.gate = asyncio.Event()
    pushes = rig.pushes()
    try:
        for index in range(5):
            pushes.push("sessions", "PUT", f"/NL/EVG/S{index}", {"id": f"S{index}"})
        # push() never waits for a partner: five pushes queue without a single await.
        assert pushes.pending("a") == 5
        # The fast partner gets all five while the slow one holds the first request open.
        await fast.wait_for(lambda item: item.path.endswith("/S4"))
        assert [item.path[-2:] for item in fast.received] == ["S0", "S1", "S2", "S3", "S4"]
        await slow.wait_for(lambda item: item.path.endswith("/S0"))
        assert len(slow.received) == 1
        slow.gate.set()
        await slow.wait_for(lambda item: item.path.endswith("/S4"))
        assert [item.path[-2:] for item in slow.received] == ["S0", "S1", "S2", "S3", "S4"]
    finally:
        await pushes.close()


async def test_queue_is_bounded_and_drops_the_oldest(rig: PushRig) -> None:
    down = rig.peers["a"]
    down.down = True
    pushes = rig.pushes(capacity=3, backoff_s=(0.2,), max_attempts=1000)
    try:
        for index in range(10):
            pushes.push("sessions", "PUT", f"/NL/EVG/S{index}", {"id": f"S{index}"})
        assert pushes.pending("a") == 3
        await rig.peers["b"].wait_for(lambda item: item.path.endswith("/S9"))
        await down.wait_for(lambda item: item.method == "PUT")
        down.down = False
        await down.wait_for(lambda item: item.path.endswith("/S9") and not down.down)
        async with asyncio.timeout(30):
            while pushes.pending("a"):  # noqa: ASYNC110 - the queue offers no event
                await asyncio.sleep(0.05)
        # The ten pushes came in one burst: the seven oldest were dropped before the first
        # attempt; the newest three were tried (503) and, once back, delivered in order.
        tried = [item.path[-2:] for item in down.received if item.method == "PUT"]
        assert set(tried) == {"S7", "S8", "S9"}
        assert tried[-3:] == ["S7", "S8", "S9"]
    finally:
        await pushes.close()


async def test_same_key_coalesces_to_the_latest(rig: PushRig) -> None:
    down = rig.peers["a"]
    down.down = True
    pushes = rig.pushes(backoff_s=(0.2,), max_attempts=1000)
    try:
        pushes.push("locations", "PATCH", "/NL/EVG/L1/E0", {"status": "AVAILABLE"}, key="E0")
        await down.wait_for(lambda item: item.method == "PATCH")
        for status in ("CHARGING", "OUTOFORDER", "AVAILABLE", "CHARGING"):
            pushes.push("locations", "PATCH", "/NL/EVG/L1/E1", {"status": status}, key="E1")
        assert pushes.pending("a") == 2
        down.down = False
        await down.wait_for(lambda item: item.path.endswith("/E1") and not down.down)
        async with asyncio.timeout(30):
            while pushes.pending("a"):  # noqa: ASYNC110 - the queue offers no event
                await asyncio.sleep(0.05)
        e1 = [item.body["status"] for item in patches(down) if item.path.endswith("/E1")]
        assert e1 == ["CHARGING"]
    finally:
        await pushes.close()


async def test_refused_for_good_is_not_retried_and_on_done_gets_the_reply(
    rig: PushRig,
) -> None:
    rig.peers["a"].refuse_pushes = True
    replies: list[OcpiReply] = []

    async def done(reply: OcpiReply) -> None:
        replies.append(reply)

    pushes = rig.pushes(backoff_s=(0.05,))
    try:
        pushes.push("cdrs", "POST", "", {"id": "CDR-1"}, on_done=done)
        await rig.peers["b"].wait_for(lambda item: item.method == "POST")
        await rig.peers["a"].wait_for(lambda item: item.method == "POST")
        async with asyncio.timeout(30):
            while pushes.pending("a") or not replies:  # noqa: ASYNC110 - no event to wait on
                await asyncio.sleep(0.05)
        assert len([i for i in rig.peers["a"].received if i.method == "POST"]) == 1
        [reply] = replies  # only the partner that accepted it
        assert reply.headers["Location"].endswith("/cdrs/1")
    finally:
        await pushes.close()


async def test_send_to_one_partner_at_an_absolute_url(rig: PushRig) -> None:
    pushes = rig.pushes()
    peer = rig.peers["b"]
    try:
        pushes.send(
            "b", "POST", f"{peer.base}/{VERSION}/commands/START_SESSION/42", {"result": "ACCEPTED"}
        )
        got = await peer.wait_for(lambda item: item.method == "POST")
        assert got.path.endswith("/commands/START_SESSION/42")
        assert got.body == {"result": "ACCEPTED"}
        assert "OCPI-to-party-id" not in got.headers  # not a module push: no routing
        assert not rig.peers["a"].received
    finally:
        await pushes.close()
