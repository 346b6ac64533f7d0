"""The credentials handshake both ways with a real eMSP peer over loopback HTTP: token A →
B → C, rotation with PUT, unregistration with DELETE, and the old tokens refused after."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.ocpi.partners import PartnerStatus
from tests.ocpi.conftest import LiveOcpi, live_ocpi, until
from tests.ocpi.emsp_peer import EmspPeer


async def test_partner_registers_with_us_and_token_a_is_spent(
    registered: tuple[LiveOcpi, EmspPeer],
) -> None:
    live, peer = registered
    assert live.gateway.ocpi is not None
    partner = live.gateway.ocpi.context.partners.get("emsp-a")
    assert partner is not None
    assert partner.status is PartnerStatus.REGISTERED
    # We read the peer's endpoints with its token B while registering it.
    assert partner.endpoint("locations", partner.endpoints[0].role.RECEIVER) is not None
    assert {role["party_id"] for role in partner.roles} == {"EMS"}
    assert peer.token_to_cpo is not None
    # Token C opens the functional modules ...
    locations = await peer.call("GET", live.module_url("locations"))
    assert locations.status == 200
    assert locations.status_code == 1000
    # ... token A no longer opens anything.
    spent = live.token_a["emsp-a"]
    for url in (live.versions_url, live.module_url("credentials"), live.module_url("locations")):
        reply = await peer.call("GET", url, token=spent)
        assert reply.status == 401, url
    # A second POST is refused: registered already (405).
    again = await peer.call(
        "POST", live.module_url("credentials"), body=peer.credentials("another-token-b")
    )
    assert again.status == 405


async def test_token_a_opens_only_versions_and_credentials(tmp_path: Path, peer: EmspPeer) -> None:
    async with live_ocpi(tmp_path) as live:
        token_a = live.token_a["emsp-a"]
        versions = await peer.call("GET", live.versions_url, token=token_a)
        assert versions.status == 200
        assert versions.data == [{"version": "2.2.1", "url": f"{live.base}/ocpi/2.2.1"}]
        details = await peer.call("GET", versions.data[0]["url"], token=token_a)
        identifiers = {(e["identifier"], e["role"]) for e in details.data["endpoints"]}
        assert {("credentials", "SENDER"), ("credentials", "RECEIVER")} <= identifiers
        assert ("locations", "SENDER") in identifiers
        assert (await peer.call("GET", live.module_url("credentials"), token=token_a)).status == 200
        assert (await peer.call("GET", live.module_url("locations"), token=token_a)).status == 401
        # PUT and DELETE need a registration first.
        put = await peer.call(
            "PUT", live.module_url("credentials"), token=token_a, body=peer.credentials("b" * 20)
        )
        assert put.status == 405
        delete = await peer.call("DELETE", live.module_url("credentials"), token=token_a)
        assert delete.status == 405


async def test_rotation_and_unregistration_by_the_partner(
    registered: tuple[LiveOcpi, EmspPeer],
) -> None:
    live, peer = registered
    old_c = peer.token_to_cpo
    reply = await peer.update_registration()
    assert reply.status == 200
    assert reply.status_code == 1000
    assert peer.token_to_cpo != old_c
    assert (await peer.call("GET", live.module_url("locations"))).status == 200
    assert (await peer.call("GET", live.module_url("locations"), token=old_c)).status == 401
    current = peer.token_to_cpo
    gone = await peer.unregister()
    assert gone.status == 200
    assert gone.status_code == 1000
    assert (await peer.call("GET", live.module_url("locations"), token=current)).status == 401
    assert (await peer.call("GET", live.versions_url, token=current)).status == 401


async def test_we_register_with_a_partner_and_rotate_and_unregister(tmp_path: Path) -> None:
    from gateway.ocpi.credentials import unregister_from, update_with

    peer = EmspPeer(country_code="FR", party_id="XYZ")
    await peer.start()
    try:
        async with live_ocpi(tmp_path, issued=(), register_with=[("emsp-b", peer)]) as live:
            assert live.gateway.ocpi is not None
            context = live.gateway.ocpi.context

            def status() -> PartnerStatus | None:
                partner = context.partners.get("emsp-b")
                return None if partner is None else partner.status

            await until(lambda: status() is PartnerStatus.REGISTERED)
            partner = context.partners.get("emsp-b")
            assert partner is not None
            # The peer read our versions with the token B we sent, and holds it now.
            assert peer.token_to_cpo is not None
            assert peer.token_a not in peer.accepted
            assert (await peer.call("GET", live.module_url("locations"))).status == 200
            # We rotate: the peer gets a new token B, we get a new token C.
            old_b, old_c = peer.token_to_cpo, partner.token_out
            partner = await update_with(context, partner)
            assert partner.token_out != old_c
            assert partner.token_out in peer.accepted
            assert peer.token_to_cpo != old_b
            assert (await peer.call("GET", live.module_url("locations"))).status == 200
            assert (await peer.call("GET", live.module_url("locations"), token=old_b)).status == 401
            # We unregister: the peer forgets our token, we refuse its.
            await unregister_from(context, partner)
            assert not peer.accepted
            assert (await peer.call("GET", live.module_url("locations"))).status == 401
    finally:
        await peer.stop()


async def test_partner_wanting_raw_tokens_is_detected(tmp_path: Path) -> None:
    peer = EmspPeer(raw_tokens=True)
    await peer.start()
    try:
        async with live_ocpi(tmp_path, issued=(), register_with=[("legacy", peer)]) as live:
            assert live.gateway.ocpi is not None
            partners = live.gateway.ocpi.context.partners
            await until(
                lambda: (
                    (p := partners.get("legacy")) is not None
                    and p.status is PartnerStatus.REGISTERED
                )
            )
            partner = partners.get("legacy")
            assert partner is not None
            assert partner.raw_token
            # Its raw token is accepted by us too.
            assert (await peer.call("GET", live.module_url("locations"))).status == 200
    finally:
        await peer.stop()


async def test_registration_fails_cleanly_when_the_partner_is_unreachable(
    tmp_path: Path, peer: EmspPeer
) -> None:
    async with live_ocpi(tmp_path) as live:
        token_a = live.token_a["emsp-a"]
        body = peer.credentials("token-b-123")
        body["url"] = "http://127.0.0.1:9/ocpi/versions"  # discard port: nothing listens
        reply = await peer.call("POST", live.module_url("credentials"), token=token_a, body=body)
        assert reply.status == 200
        assert reply.status_code == 3001
        # Still pending: token A still works for a proper attempt.
        ok = await peer.register_with(live.versions_url, token_a)
        assert ok.status_code == 1000


async def test_token_issued_by_the_command_line_works_on_a_running_gateway(
    tmp_path: Path, peer: EmspPeer
) -> None:
    from gateway.ocpi.command import issue_token

    async with live_ocpi(tmp_path, store_name="cli.sqlite3") as live:
        token = await issue_token(str(tmp_path / "cli.sqlite3"), "late-emsp")

        async def accepted() -> bool:
            reply = await peer.call("GET", live.versions_url, token=token)
            return reply.status == 200

        # Refused until the registry re-reads the store (at most every 5 s), then accepted.
        async with asyncio.timeout(30):
            while not await accepted():  # noqa: ASYNC110 - polling the server is the test
                await asyncio.sleep(0.5)
        registered = await peer.register_with(live.versions_url, token)
        assert registered.status_code == 1000
        assert (await peer.call("GET", live.module_url("locations"))).status == 200


async def test_registration_errors_name_the_spec_codes(tmp_path: Path) -> None:
    legacy = EmspPeer(offered_version="2.1.1")
    partial = EmspPeer(with_credentials_endpoint=False)
    for peer in (legacy, partial):
        await peer.start()
    try:
        async with live_ocpi(tmp_path, issued=("legacy", "partial"), chargers=1) as live:
            for name, peer, code in (("legacy", legacy, 3002), ("partial", partial, 3003)):
                token_a = live.token_a[name]
                reply = await peer.call(
                    "POST",
                    live.module_url("credentials"),
                    token=token_a,
                    body=peer.credentials(next(iter(peer.accepted))),
                )
                assert reply.status == 200, name
                assert reply.status_code == code, (name, reply.body)
                # Nothing registered: token A still opens only versions and credentials.
                assert (await peer.call("GET", live.versions_url, token=token_a)).status == 200
                locations = await peer.call("GET", live.module_url("locations"), token=token_a)
                assert locations.status == 401
    finally:
        for peer in (legacy, partial):
            await peer.stop()
