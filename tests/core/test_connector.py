"""The connector state machine, driven with readings and a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.charger import ChargerReading, CpState
from gateway.core.connector import Connector
from gateway.core.events import (
    AuthorizationRequested,
    ConnectorEffect,
    SessionEnded,
    SessionStarted,
    StatusChanged,
)
from gateway.core.session import SessionOrigin, StopReason
from gateway.core.status import ConnectorStatus


class ManualClock:
    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return self.seconds


def reading(
    state: CpState,
    *,
    enabled: bool = False,
    setpoint_a: float = 0.0,
    energy_wh: float = 1000.0,
    rfid: str | None = None,
    error_code: int = 0,
) -> ChargerReading:
    current = 16.0 if state.charging else 0.0
    return ChargerReading(
        cp_state=state,
        enabled=enabled,
        current_a=(current, current, current),
        voltage_v=(230.0, 230.0, 230.0),
        power_w=current * 690.0,
        energy_wh=energy_wh,
        setpoint_a=setpoint_a,
        rfid=rfid,
        error_code=error_code,
    )


def statuses(effects: list[ConnectorEffect]) -> list[ConnectorStatus]:
    return [e.status for e in effects if isinstance(e, StatusChanged)]


def make() -> tuple[Connector, ManualClock]:
    clock = ManualClock()
    return Connector("CP-1", 1, max_current_a=16.0, clock=clock, connection_timeout_s=60), clock


def test_rfid_session_from_plug_in_to_unplug() -> None:
    connector, _ = make()
    seen = statuses(connector.observe(reading(CpState.A)))
    effects = connector.observe(reading(CpState.B1, rfid="TAG"))
    assert AuthorizationRequested("CP-1", 1, "TAG") in effects
    seen += statuses(effects)
    effects = connector.authorization_decided("TAG", accepted=True)
    (started,) = [e for e in effects if isinstance(e, SessionStarted)]
    assert started.session.origin is SessionOrigin.LOCAL
    assert started.session.meter_start_wh == 1000.0
    offer = connector.offer_to_write()
    assert offer is not None
    assert offer.enabled
    assert offer.current_a == 16.0
    seen += statuses(connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16.0)))
    assert connector.offer_to_write() is None
    effects = connector.observe(reading(CpState.A, enabled=True, setpoint_a=16, energy_wh=1500))
    (ended,) = [e for e in effects if isinstance(e, SessionEnded)]
    assert ended.session.stop_reason is StopReason.EV_DISCONNECTED
    assert ended.session.energy_wh == 500.0
    seen += statuses(effects)
    off = connector.offer_to_write()
    assert off is not None
    assert not off.enabled
    seen += statuses(connector.observe(reading(CpState.A)))
    assert seen == [
        ConnectorStatus.AVAILABLE,
        ConnectorStatus.PREPARING,
        ConnectorStatus.CHARGING,
        ConnectorStatus.FINISHING,
        ConnectorStatus.AVAILABLE,
    ]


def test_rejected_tag_starts_nothing() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.B1, rfid="BAD"))
    assert connector.authorization_decided("BAD", accepted=False) == []
    assert connector.session is None
    assert connector.status is ConnectorStatus.PREPARING


def test_remote_start_waits_for_a_vehicle_within_the_connection_timeout() -> None:
    connector, clock = make()
    connector.observe(reading(CpState.A))
    assert statuses(connector.request_remote_start("APP")) == [ConnectorStatus.PREPARING]
    clock.seconds = 59
    effects = connector.observe(reading(CpState.B1))
    assert any(isinstance(e, SessionStarted) for e in effects)

    late, late_clock = make()
    late.observe(reading(CpState.A))
    late.request_remote_start("APP")
    late_clock.seconds = 60
    assert statuses(late.tick()) == [ConnectorStatus.AVAILABLE]
    assert not any(isinstance(e, SessionStarted) for e in late.observe(reading(CpState.B1)))


def test_remote_stop_closes_on_the_first_disabled_reading() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.B1))
    connector.request_remote_start("APP")
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16, energy_wh=1200))
    connector.request_stop(StopReason.REMOTE)
    stop_offer = connector.offer_to_write()
    assert stop_offer is not None
    assert not stop_offer.enabled
    # A reading from before the disable took effect does not end the session...
    effects = connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16, energy_wh=1250))
    assert not any(isinstance(e, SessionEnded) for e in effects)
    # ...the first disabled one does, with its energy register.
    effects = connector.observe(reading(CpState.B1, energy_wh=1260))
    (ended,) = [e for e in effects if isinstance(e, SessionEnded)]
    assert ended.session.meter_stop_wh == 1260
    assert ended.session.stop_reason is StopReason.REMOTE
    assert connector.status is ConnectorStatus.FINISHING


def test_paused_by_the_evse_is_suspended_evse_and_a_full_ev_suspended_ev() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.B1))
    connector.request_remote_start("APP")
    connector.observe(reading(CpState.C2, enabled=True, setpoint_a=16))
    full = connector.observe(reading(CpState.B2, enabled=True, setpoint_a=16))
    assert statuses(full) == [ConnectorStatus.SUSPENDED_EV]
    paused = connector.observe(reading(CpState.B1, enabled=True, setpoint_a=0))
    assert statuses(paused) == [ConnectorStatus.SUSPENDED_EVSE]
    # A lost setpoint (the charger rebooted) is written again.
    rewrite = connector.offer_to_write()
    assert rewrite is not None
    assert rewrite.current_a == 16.0


def test_unreachable_and_faulted() -> None:
    connector, _ = make()
    connector.observe(reading(CpState.A))
    assert statuses(connector.observe_unreachable()) == [ConnectorStatus.UNAVAILABLE]
    assert not connector.online
    assert statuses(connector.observe(reading(CpState.F, error_code=7))) == [
        ConnectorStatus.FAULTED
    ]
