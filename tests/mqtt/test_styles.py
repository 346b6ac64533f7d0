"""The payload styles' decoders and state mappings, without a broker."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.charger import CpState, round_down_to_resolution
from gateway.mqtt import PayloadError, evgw_style, goe_style, openwb_style
from gateway.mqtt.styles import Command, Commanded

GOE = goe_style("1")
NRG = [230, 231, 229, 0, 10, 10.5, 9.5, 2300, 2425, 2175, 0, 6900, 1, 1, 1, 0]


def goe_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in {"car": 1, "amp": 16, "frc": 2, "alw": True, "eto": 5000, "nrg": NRG}.items():
        fields.update(GOE.state_topics[f"go-eCharger/1/{key}"](value))
    for key, value in overrides.items():
        fields.update(GOE.state_topics[f"go-eCharger/1/{key}"](value))
    return fields


@pytest.mark.parametrize(
    ("car", "frc", "alw", "state"),
    [
        (1, 2, True, CpState.A),
        (2, 2, True, CpState.C2),
        (3, 2, True, CpState.B2),
        (3, 1, False, CpState.B1),
        (4, 2, True, CpState.B2),
        (4, 2, False, CpState.B1),
        (5, 2, True, CpState.F),
        (0, 2, True, CpState.F),
        (None, 2, True, CpState.F),
    ],
)
def test_goe_car_state_mapping(car: int | None, frc: int, alw: bool, state: CpState) -> None:
    reading = GOE.build_reading(goe_fields(car=car, frc=frc, alw=alw), Commanded())
    assert reading.cp_state is state
    assert reading.enabled is (frc != 1)
    assert reading.setpoint_a == (0.0 if frc == 1 else 16.0)


def test_goe_nrg_layout() -> None:
    reading = GOE.build_reading(goe_fields(), Commanded())
    assert reading.voltage_v == (230, 231, 229)
    assert reading.current_a == (10, 10.5, 9.5)
    assert reading.power_w == 6900
    assert reading.energy_wh == 5000


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("car", 6, "unknown_state"),
        ("car", "2", "wrong_type"),
        ("car", 2.5, "wrong_type"),
        ("amp", True, "wrong_type"),
        ("amp", -1, "out_of_range"),
        ("frc", 3, "out_of_range"),
        ("nrg", {"u": 1}, "wrong_type"),
        ("eto", None, "wrong_type"),
        ("alw", 1, "wrong_type"),
    ],
)
def test_goe_rejects(key: str, value: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        GOE.state_topics[f"go-eCharger/1/{key}"](value)
    assert info.value.reason == reason


def test_goe_commands_and_results() -> None:
    out = GOE.encode(Command(current_a=10.0, enabled=True, phases=1), Commanded(), "x")
    assert [(o.topic, o.payload) for o in out] == [
        ("go-eCharger/1/amp/set", b"10"),
        ("go-eCharger/1/frc/set", b"2"),
        ("go-eCharger/1/psm/set", b"1"),
    ]
    result = out[0].result
    assert result is not None
    assert result.topic == "go-eCharger/1/amp/result"
    assert result.check(b"success") == (True, "success")
    assert result.check(b"value out of range 99") == (False, "value out of range 99")


def test_openwb_state_and_commands() -> None:
    style = openwb_style(4)
    fields: dict[str, Any] = {}
    for key, value in {
        "power": 0,
        "phases_in_use": 0,
        "imported": 12.5,
        "exported": 0,
        "currents": [0, 0, 0],
        "plug_state": True,
        "charge_state": False,
    }.items():
        fields.update(style.state_topics[f"openWB/mqtt/chargepoint/4/get/{key}"](value))
    assert style.required <= fields.keys()
    paused = style.build_reading(fields, Commanded(setpoint_a=16, paused=True))
    assert (paused.cp_state, paused.setpoint_a) == (CpState.B1, 0.0)
    offering = style.build_reading(fields, Commanded(setpoint_a=16))
    assert (offering.cp_state, offering.setpoint_a) == (CpState.B2, 16.0)
    out = style.encode(Command(current_a=16.0, phases=3), Commanded(), "x")
    assert [(o.topic, o.payload, o.retain) for o in out] == [
        ("openWB/mqtt/chargepoint/4/set/current", b"16.0", True),
        ("openWB/mqtt/chargepoint/4/set/phases_to_use", b"3", True),
    ]


def test_evgw_state_defaults_and_result_correlation() -> None:
    style = evgw_style("c", watchdog_s=10, failsafe_current_a=6)
    state = {
        "schema": 1,
        "cp_state": "B2",
        "enabled": True,
        "setpoint_a": 16,
        "currents_a": [0, 0, 0],
        "power_w": 0,
        "energy_wh": 1,
        "future_field": {"ignored": True},
    }
    reading = style.build_reading(style.state_topics["evgw/chargers/c/state"](state), Commanded())
    assert reading.cp_state is CpState.B2
    assert reading.voltage_v == (0.0, 0.0, 0.0)
    assert (reading.rfid, reading.error_code) == (None, 0)
    (out,) = style.encode(Command(current_a=0.0), Commanded(), "id-1")
    assert out.payload == (
        b'{"schema":1,"id":"id-1","current_a":0.0,"watchdog_s":10,"failsafe_current_a":6}'
    )
    assert style.keepalive_s == 5
    assert out.result is not None
    assert out.result.check(b'{"schema":1,"id":"other","ok":true}') is None
    assert out.result.check(b'{"schema":1,"id":"id-1","ok":false,"reason":"no"}') == (False, "no")
    assert out.result.check(b'{"schema":1,"id":"id-1","ok":true}') == (True, "ok")


@pytest.mark.parametrize(
    ("amps", "resolution", "expected"),
    [(16.0, 0.1, 16.0), (10.79, 0.1, 10.7), (10.79, 1.0, 10.0), (6.0, 1.0, 6.0), (0.0, 0.1, 0.0)],
)
def test_round_down(amps: float, resolution: float, expected: float) -> None:
    assert round_down_to_resolution(amps, resolution) == expected
