"""What the local API shows: JSON-ready views of the running gateway (site, circuits,
chargers, sessions, vehicle needs, uplinks, the problems `evgw status` reports), read from the
site, the balancing loop, the meters and the OCPP stations without changing any of them.

Currents are in amperes per grid phase [L1, L2, L3]; a charger's own readings are per its
phases [L1, L2, L3] as the charger reports them. Times are ISO 8601 in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway import __version__
from gateway.balancing.topology import PHASE_LETTERS, ancestors, grid_phases
from gateway.core.session import Session
from gateway.core.status import ConnectorStatus
from gateway.ocpp.station import station_url

if TYPE_CHECKING:
    from gateway.runtime import Gateway

JsonObject = dict[str, Any]
API_SOURCE = "api"
"""The source name of limits set through the local API (`set_charger_cap`, `set_circuit_limit`)."""

_PROBLEM_STATUSES = (ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _amps(values: Iterable[float]) -> list[float]:
    """Rounded to the milliampere, the finest resolution a charger or meter gives."""
    return [round(value, 3) for value in values]


def session_view(session: Session, energy_now_wh: float | None = None) -> JsonObject:
    """A session; a live one's energy is counted up to `energy_now_wh` (the last reading)."""
    energy = session.energy_wh
    if energy is None and energy_now_wh is not None:
        energy = energy_now_wh - session.meter_start_wh
    return {
        "id": session.id,
        "charger_id": session.charger_id,
        "connector_id": session.connector_id,
        "id_tag": session.id_tag,
        "origin": str(session.origin),
        "started_at": iso(session.started_at),
        "stopped_at": iso(session.stopped_at),
        "active": session.active,
        "energy_wh": None if energy is None else round(max(0.0, energy), 1),
        "stop_reason": None if session.stop_reason is None else str(session.stop_reason),
        "upstream_transaction_id": session.upstream_transaction_id,
    }


def live_sessions(gateway: Gateway) -> list[JsonObject]:
    sessions = []
    for connector in gateway.site.connectors():
        if connector.session is not None:
            reading = connector.reading
            sessions.append(
                session_view(connector.session, None if reading is None else reading.energy_wh)
            )
    return sessions


def _rotation(gateway: Gateway, charger_id: str) -> tuple[str, int]:
    """The charger's phase rotation and phase count as the balancing places it."""
    if gateway.balancing is not None:
        charger = gateway.balancing.controller.chargers.get(charger_id)
        if charger is not None:
            return charger.phase_rotation, charger.phases
    spec = gateway.site.spec(charger_id)
    return ("RST" if spec.phases == 3 else "R"), spec.phases


def charger_grid_currents(gateway: Gateway, charger_id: str) -> list[float]:
    """What a charger measures, moved onto the grid phases its rotation wires it to."""
    reading = gateway.site.connector(charger_id).reading
    grid = [0.0, 0.0, 0.0]
    if reading is None:
        return grid
    rotation, phases = _rotation(gateway, charger_id)
    if phases == 1:
        grid[PHASE_LETTERS.index(rotation[0])] += max(0.0, reading.current_a[0])
        return grid
    for charger_phase, letter in enumerate(rotation):
        grid[PHASE_LETTERS.index(letter)] += max(0.0, reading.current_a[charger_phase])
    return grid


def charger_allocation(gateway: Gateway, charger_id: str) -> float:
    """The current the gateway grants a charger now: the balanced allocation, or (without
    balancing) its maximum while a session is active; 0 without a session."""
    connector = gateway.site.connector(charger_id)
    offer = connector.desired_offer
    return offer.current_a if offer.enabled else 0.0


def charger_view(gateway: Gateway, charger_id: str) -> JsonObject:
    site = gateway.site
    connector = site.connector(charger_id)
    spec = site.spec(charger_id)
    reading = connector.reading
    status = connector.status
    balancing: JsonObject | None = None
    caps: dict[str, float] = {}
    circuit: str | None = None
    if gateway.balancing is not None and charger_id in gateway.balancing.controller.chargers:
        decided = gateway.balancing.status(charger_id)
        balancing = {
            "setpoint_a": decided.setpoint_a,
            "target_a": round(decided.target_a, 3),
            "reason": decided.reason,
        }
        caps = gateway.balancing.charger_caps(charger_id)
        circuit = gateway.balancing.controller.chargers[charger_id].circuit
    session = connector.session
    return {
        "id": charger_id,
        "status": None if status is None else str(status),
        "online": connector.online,
        "operative": connector.operative,
        "phases": spec.phases,
        "max_current_a": spec.max_current_a,
        "circuit": circuit,
        "current_a": None if reading is None else _amps(reading.current_a),
        "power_w": None if reading is None else round(reading.power_w, 1),
        "energy_wh": None if reading is None else round(reading.energy_wh, 1),
        "setpoint_a": None if reading is None else round(reading.setpoint_a, 3),
        "enabled": None if reading is None else reading.enabled,
        "cp_state": None if reading is None else str(reading.cp_state),
        "allocated_a": charger_allocation(gateway, charger_id),
        "balancing": balancing,
        "caps_a": caps,
        "error_code": 0 if reading is None else reading.error_code,
        "ocpp_error_code": None if reading is None else str(reading.ocpp_error_code),
        "session_id": None if session is None else session.id,
    }


def chargers_view(gateway: Gateway) -> list[JsonObject]:
    return [charger_view(gateway, charger_id) for charger_id in gateway.site.charger_ids]


def circuits_view(gateway: Gateway) -> list[JsonObject]:
    """Every circuit of the fuse tree: its limits, what its meter measures (or, without a
    meter, what the chargers below it measure) and what the balancing allocates below it."""
    loop = gateway.balancing
    if loop is None:
        return []
    controller = loop.controller
    circuits = controller.circuits
    measured_by_chargers: dict[str, list[float]] = {cid: [0.0, 0.0, 0.0] for cid in circuits}
    allocated: dict[str, list[float]] = {cid: [0.0, 0.0, 0.0] for cid in circuits}
    chargers_below: dict[str, list[str]] = {cid: [] for cid in circuits}
    for charger_id, charger in controller.chargers.items():
        grid = charger_grid_currents(gateway, charger_id)
        amps = charger_allocation(gateway, charger_id)
        loaded = grid_phases(charger.phase_rotation, charger.phases)
        for circuit_id in ancestors(circuits, charger.circuit):
            for phase in range(3):
                measured_by_chargers[circuit_id][phase] += grid[phase]
            for phase in loaded:
                allocated[circuit_id][phase] += amps
        chargers_below[charger.circuit].append(charger_id)
    views = []
    for circuit_id, circuit in circuits.items():
        limits = controller.circuit_limits(circuit_id)
        effective = [
            min([circuit.max_current_a[phase], *(limit[phase] for limit in limits.values())])
            for phase in range(3)
        ]
        meter = loop.meters.get(circuit_id)
        measured: list[float]
        if meter is None:
            source = "chargers"
            measured = measured_by_chargers[circuit_id]
        else:
            reading = meter.latest()
            source = "meter" if reading is not None else "meter-stale"
            measured = [] if reading is None else list(reading.current_a)
        views.append(
            {
                "id": circuit_id,
                "parent": circuit.parent,
                "fuse_a": list(circuit.max_current_a),
                "max_power_w": circuit.max_power_w,
                "limits_a": {source_name: list(amps) for source_name, amps in limits.items()},
                "limit_a": effective,
                "measured_a": _amps(measured) if measured else None,
                "measured_source": source,
                "allocated_a": _amps(allocated[circuit_id]),
                "chargers": chargers_below[circuit_id],
            }
        )
    return views


def site_currents(gateway: Gateway) -> list[float]:
    """The site's current per grid phase: the root circuit's measurement, or the sum of what
    every charger measures when there is no fuse tree or no meter on the root."""
    loop = gateway.balancing
    root = gateway.config.root_circuit
    if loop is not None and root is not None:
        meter = loop.meters.get(root)
        reading = None if meter is None else meter.latest()
        if reading is not None:
            return _amps(max(0.0, amps) for amps in reading.current_a)
    total = [0.0, 0.0, 0.0]
    for charger_id in gateway.site.charger_ids:
        for phase, amps in enumerate(charger_grid_currents(gateway, charger_id)):
            total[phase] += amps
    return _amps(total)


def site_view(gateway: Gateway) -> JsonObject:
    statuses: dict[str, int] = {}
    power = 0.0
    for connector in gateway.site.connectors():
        name = "Unknown" if connector.status is None else str(connector.status)
        statuses[name] = statuses.get(name, 0) + 1
        if connector.reading is not None:
            power += connector.reading.power_w
    root = gateway.config.root_circuit
    limit: list[float] | None = None
    if gateway.balancing is not None and root is not None:
        circuit = gateway.balancing.controller.circuits[root]
        limit = list(circuit.max_current_a)
    return {
        "version": __version__,
        "time": iso(datetime.now(UTC)),
        "chargers": len(gateway.site.charger_ids),
        "statuses": statuses,
        "balanced": gateway.balancing is not None,
        "root_circuit": root,
        "current_a": site_currents(gateway),
        "limit_a": limit,
        "power_w": round(power, 1),
    }


def uplinks_view(gateway: Gateway) -> list[JsonObject]:
    """Each OCPP station's connection and offline queue."""
    views = []
    stations: list[tuple[str, Any]] = [
        *(("ocpp1.6", station) for station in gateway.stations.values()),
        *(("ocpp2.0.1", station) for station in gateway.stations_201.values()),
    ]
    for protocol, station in stations:
        try:
            queued: int | None = len(station.outbox)
        except RuntimeError:  # not running yet: its queue is not loaded
            queued = None
        views.append(
            {
                "id": station.charger_id,
                "protocol": protocol,
                "url": station_url(gateway.config.upstream.url, station.charger_id),
                "connected": bool(station.connection.connected),
                "accepted": bool(station.accepted),
                "queue_depth": queued,
            }
        )
    return views


def vehicle_need_view(gateway: Gateway, charger_id: str) -> JsonObject:
    """The vehicle need the balancing holds for the charger's active session."""
    connector = gateway.site.connector(charger_id)
    session = connector.session
    need = None if gateway.balancing is None else gateway.balancing.vehicle_need(charger_id)
    view: JsonObject = {
        "charger_id": charger_id,
        "session_id": None if session is None else session.id,
        "energy_kwh": None,
        "departure": None,
        "energy_left_kwh": None,
    }
    if need is not None and gateway.balancing is not None:
        departure_in = need.departure_at - gateway.balancing.monotonic()
        departure = datetime.now(UTC).timestamp() + departure_in
        delivered = 0.0
        if session is not None and connector.reading is not None:
            delivered = connector.reading.energy_wh - session.meter_start_wh
        view["energy_kwh"] = round(need.energy_wh / 1000.0, 3)
        view["departure"] = iso(datetime.fromtimestamp(round(departure), UTC))
        view["energy_left_kwh"] = round(max(0.0, need.energy_wh - delivered) / 1000.0, 3)
    return view


def problems(gateway: Gateway, alarms: list[JsonObject]) -> list[str]:
    """What `evgw status` reports as a problem (exit 1): an active alarm, a charger that is
    unreachable, faulted or taken out of service, an uplink not connected and accepted."""
    found = [f"alarm: {alarm.get('message') or alarm.get('kind') or alarm}" for alarm in alarms]
    for connector in gateway.site.connectors():
        if not connector.online:
            found.append(f"charger {connector.charger_id}: not answering")
        elif not connector.operative:
            found.append(f"charger {connector.charger_id}: out of service")
        elif connector.status in _PROBLEM_STATUSES:
            found.append(f"charger {connector.charger_id}: {connector.status}")
    for uplink in uplinks_view(gateway):
        if not (uplink["connected"] and uplink["accepted"]):
            state = "not accepted" if uplink["connected"] else "not connected"
            found.append(f"uplink {uplink['id']} ({uplink['protocol']}): {state}")
    return found
