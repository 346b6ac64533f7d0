"""The connector's reservations and upstream current limit, driven with readings and a manual
clock (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.charger import CpState
from gateway.core.connector import ChargingOffer, RemoteStartRefused
from gateway.core.events import ReservationEnded, SessionStarted
from gateway.core.reservations import Reservation, ReservationEndReason, ReservationStatus
from gateway.core.status import ConnectorStatus
from tests.core.test_connector import make, reading, statuses


def reservation(reservation_id: int = 7, id_tag: str = "OWNER") -> Reservation:
    return Reservation(
        "CP-1", 1, reservation_id, id_tag, "GROUP", datetime(2030, 1, 1, tzinfo=UTC), "ocpp"
    )


def test_a_reservation_shows_reserved_and_only_its_reservation_id_starts() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.A))
    status, effects = connector.reserve(reservation())
    assert status is ReservationStatus.ACCEPTED
    assert statuses(effects) == [ConnectorStatus.RESERVED]
    assert connector.reserve(reservation(8))[0] is ReservationStatus.OCCUPIED
    assert connector.reserve(reservation(7, "OTHER"))[0] is ReservationStatus.ACCEPTED  # replaces

    with pytest.raises(RemoteStartRefused, match="reserved"):
        connector.request_remote_start("STRANGER")
    # A tag admitted before the reservation (no reservation id) does not start.
    connector.authorization_decided("STRANGER", True)
    assert not any(isinstance(e, SessionStarted) for e in connector.observe(reading(CpState.B1)))
    effects = connector.authorization_decided("OTHER", True, reservation_id=7)
    started = [e for e in effects if isinstance(e, SessionStarted)]
    assert started[0].session.reservation_id == 7
    ended = [e for e in effects if isinstance(e, ReservationEnded)]
    assert ended[0].reason is ReservationEndReason.USED
    assert connector.reservation is None


def test_busy_faulted_and_unreachable_connectors_refuse_and_a_fault_removes() -> None:
    connector, _ = make()
    assert connector.reserve(reservation())[0] is ReservationStatus.UNAVAILABLE  # never polled
    connector.observe(reading(CpState.B1))
    assert connector.reserve(reservation())[0] is ReservationStatus.OCCUPIED
    connector.observe(reading(CpState.F, error_code=3))
    assert connector.reserve(reservation())[0] is ReservationStatus.FAULTED
    connector.observe(reading(CpState.A))
    assert connector.reserve(reservation())[0] is ReservationStatus.ACCEPTED
    effects = connector.observe(reading(CpState.F, error_code=3))
    assert [e.reason for e in effects if isinstance(e, ReservationEnded)] == [
        ReservationEndReason.REMOVED
    ]
    assert statuses(effects) == [ConnectorStatus.FAULTED]
    assert statuses(connector.observe(reading(CpState.A))) == [ConnectorStatus.AVAILABLE]


def test_cancelling_ends_the_reservation_and_frees_the_connector() -> None:
    connector, clock = make()
    connector.observe(reading(CpState.A))
    connector.reserve(reservation())
    clock.seconds += 5
    with pytest.raises(LookupError):
        connector.end_reservation(99, ReservationEndReason.CANCELLED)
    effects = connector.end_reservation(7, ReservationEndReason.CANCELLED)
    assert isinstance(effects[0], ReservationEnded)
    assert effects[0].at - effects[0].reservation.expires_at < timedelta(0)
    assert statuses(effects) == [ConnectorStatus.AVAILABLE]


def test_an_upstream_limit_sets_the_setpoint_and_below_six_amperes_pauses() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.A))
    connector.request_remote_start("APP")
    connector.observe(reading(CpState.B1))
    assert connector.offer_to_write() == ChargingOffer(enabled=True, current_a=16.0)
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16.0))
    assert connector.offer_to_write() is None

    connector.set_current_limit(10.0)
    assert connector.offer_to_write() == ChargingOffer(enabled=True, current_a=10.0)
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=10.0))
    assert connector.offer_to_write() is None  # the charger follows

    connector.set_current_limit(4.0)
    assert connector.offer_to_write() == ChargingOffer(enabled=True, current_a=0.0)
    connector.observe(reading(CpState.C1, enabled=True, setpoint_a=0.0))
    assert connector.offer_to_write() is None

    connector.set_current_limit(None)
    assert connector.offer_to_write() == ChargingOffer(enabled=True, current_a=16.0)
    # A charger that clamps (shows 13 A, not 16 A) is not written on every poll for ever.
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=13.0))
    writes = 1
    while connector.offer_to_write() is not None:
        writes += 1
        assert writes < 10
