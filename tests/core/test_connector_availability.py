"""A connector taken out of service (the local API's availability, OCPP's Inoperative)."""

from __future__ import annotations

import pytest

from gateway.core.charger import CpState
from gateway.core.connector import RemoteStartRefused
from gateway.core.events import SessionStarted
from gateway.core.status import ConnectorStatus
from tests.core.test_connector import make, reading, statuses


def test_inoperative_shows_unavailable_offers_nothing_and_starts_no_session() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.A))
    assert statuses(connector.set_operative(False)) == [ConnectorStatus.UNAVAILABLE]
    assert not connector.operative

    with pytest.raises(RemoteStartRefused, match="inoperative"):
        connector.request_remote_start("TAG")
    effects = connector.observe(reading(CpState.B1))
    effects += connector.authorization_decided("TAG", accepted=True)
    assert not any(isinstance(effect, SessionStarted) for effect in effects)
    assert connector.session is None
    assert connector.status is ConnectorStatus.UNAVAILABLE

    assert statuses(connector.set_operative(True)) == [ConnectorStatus.PREPARING]
    connector.request_remote_start("TAG")
    assert connector.session is not None


def test_a_running_session_is_withheld_while_inoperative_and_resumes() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.B1))
    connector.request_remote_start("TAG")
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16.0))
    assert connector.status is ConnectorStatus.CHARGING
    assert connector.desired_offer.enabled

    assert statuses(connector.set_operative(False)) == [ConnectorStatus.UNAVAILABLE]
    assert not connector.desired_offer.enabled
    assert connector.offer_to_write() is not None  # the charger is told to stop offering
    assert connector.session is not None  # the session itself stays open

    assert statuses(connector.set_operative(True)) == [ConnectorStatus.CHARGING]
    assert connector.desired_offer.enabled


def test_a_fault_still_shows_as_faulted_when_inoperative() -> None:
    connector, _ = make()
    connector.set_operative(False)
    connector.observe(reading(CpState.F, error_code=7))
    assert connector.status is ConnectorStatus.FAULTED
