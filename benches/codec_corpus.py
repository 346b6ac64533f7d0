"""A corpus of realistic OCPP-J frames for the codec benchmark.

Each entry names the OCPP version, the action whose schema applies, and whether the frame is a
CALL (request schema) or a CALLRESULT (response schema). The malformed entries are what chargers
and central systems really send wrong: bad JSON, wrong types, missing fields, values outside an
enum, extra properties, unknown actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson


@dataclass(frozen=True)
class CorpusFrame:
    name: str
    version: Literal["1.6", "2.0.1"]
    action: str
    kind: Literal["call", "result"]
    text: str
    valid: bool


def _frame(*parts: object) -> str:
    return orjson.dumps(list(parts)).decode()


def _meter_values_16() -> str:
    """A three-phase AC meter sample the way KEBA/ABB-class chargers report it: register,
    power, per-phase current and voltage, offered current, SoC."""
    sampled: list[dict[str, str]] = [
        {
            "value": "152030.5",
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {
            "value": "10925.0",
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "Outlet",
            "unit": "W",
        },
    ]
    for phase, amps in (("L1", "15.9"), ("L2", "15.7"), ("L3", "16.0")):
        sampled.append(
            {
                "value": amps,
                "context": "Sample.Periodic",
                "measurand": "Current.Import",
                "phase": phase,
                "location": "Outlet",
                "unit": "A",
            }
        )
    for phase, volts in (("L1-N", "229.8"), ("L2-N", "231.2"), ("L3-N", "230.4")):
        sampled.append(
            {
                "value": volts,
                "context": "Sample.Periodic",
                "measurand": "Voltage",
                "phase": phase,
                "unit": "V",
            }
        )
    sampled.append({"value": "16", "measurand": "Current.Offered", "unit": "A"})
    sampled.append({"value": "64", "measurand": "SoC", "location": "EV", "unit": "Percent"})
    return _frame(
        2,
        "9f1c2a4e-5b7d-4c1e-9a3f-2d6b8e0c7a15",
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 48213,
            "meterValue": [{"timestamp": "2026-11-23T08:15:00.000Z", "sampledValue": sampled}],
        },
    )


def _transaction_event_201() -> str:
    meter_value = {
        "timestamp": "2026-11-23T08:15:00.000Z",
        "sampledValue": [
            {
                "value": 152030.5,
                "context": "Sample.Periodic",
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unitOfMeasure": {"unit": "Wh"},
            },
            {"value": 10925.0, "context": "Sample.Periodic", "measurand": "Power.Active.Import"},
            {"value": 15.9, "measurand": "Current.Import", "phase": "L1"},
            {"value": 15.7, "measurand": "Current.Import", "phase": "L2"},
            {"value": 16.0, "measurand": "Current.Import", "phase": "L3"},
        ],
    }
    return _frame(
        2,
        "3b0d6c52-1f4a-4d8e-b7c9-5e2a9f1d0c36",
        "TransactionEvent",
        {
            "eventType": "Updated",
            "timestamp": "2026-11-23T08:15:00.000Z",
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 17,
            "offline": False,
            "transactionInfo": {
                "transactionId": "a1f3c9d2-7e41-4b6a-8c05-d93e2b7f4a18",
                "chargingState": "Charging",
                "timeSpentCharging": 3420,
            },
            "evse": {"id": 1, "connectorId": 1},
            "idToken": {"idToken": "04A2B3C4D5E680", "type": "ISO14443"},
            "meterValue": [meter_value],
        },
    )


def build_corpus() -> list[CorpusFrame]:
    """Every frame of the benchmark, valid ones first."""
    boot_16 = {
        "chargePointVendor": "KEBA AG",
        "chargePointModel": "KC-P30-ES240022-E0R",
        "chargePointSerialNumber": "22345678",
        "chargeBoxSerialNumber": "22345678",
        "firmwareVersion": "P30 v3.10.57",
        "meterType": "KEBA internal",
    }
    status_16 = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Charging",
        "timestamp": "2026-11-23T08:14:03.512Z",
        "info": "C2",
        "vendorId": "evgw",
    }
    boot_201 = {
        "chargingStation": {
            "model": "NG910",
            "vendorName": "Alfen BV",
            "serialNumber": "ACE0123456",
            "firmwareVersion": "6.4.0-4210",
            "modem": {"iccid": "8931440400012345678", "imsi": "204043123456789"},
        },
        "reason": "PowerUp",
    }
    call_id = "c5e1d7a2-8b3f-4e6c-9d0a-1f2b3c4d5e6f"
    return [
        CorpusFrame(
            "1.6 BootNotification",
            "1.6",
            "BootNotification",
            "call",
            _frame(2, call_id, "BootNotification", boot_16),
            True,
        ),
        CorpusFrame(
            "1.6 StatusNotification",
            "1.6",
            "StatusNotification",
            "call",
            _frame(2, call_id, "StatusNotification", status_16),
            True,
        ),
        CorpusFrame(
            "1.6 MeterValues (3 phases)", "1.6", "MeterValues", "call", _meter_values_16(), True
        ),
        CorpusFrame(
            "1.6 BootNotification.conf",
            "1.6",
            "BootNotification",
            "result",
            _frame(
                3,
                call_id,
                {"status": "Accepted", "currentTime": "2026-11-23T08:00:00Z", "interval": 300},
            ),
            True,
        ),
        CorpusFrame(
            "2.0.1 BootNotification",
            "2.0.1",
            "BootNotification",
            "call",
            _frame(2, call_id, "BootNotification", boot_201),
            True,
        ),
        CorpusFrame(
            "2.0.1 TransactionEvent",
            "2.0.1",
            "TransactionEvent",
            "call",
            _transaction_event_201(),
            True,
        ),
        # Malformed: what a peer gets wrong. Each must be refused by every contender.
        CorpusFrame(
            "bad JSON",
            "1.6",
            "StatusNotification",
            "call",
            '[2, "a1", "StatusNotification", {"connectorId": 1, "status": ',
            False,
        ),
        CorpusFrame(
            "1.6 wrong type",
            "1.6",
            "StatusNotification",
            "call",
            _frame(2, call_id, "StatusNotification", {**status_16, "connectorId": "1"}),
            False,
        ),
        CorpusFrame(
            "1.6 missing field",
            "1.6",
            "StatusNotification",
            "call",
            _frame(
                2,
                call_id,
                "StatusNotification",
                {k: v for k, v in status_16.items() if k != "errorCode"},
            ),
            False,
        ),
        CorpusFrame(
            "1.6 bad enum",
            "1.6",
            "StatusNotification",
            "call",
            _frame(2, call_id, "StatusNotification", {**status_16, "status": "Busy"}),
            False,
        ),
        CorpusFrame(
            "2.0.1 extra property",
            "2.0.1",
            "BootNotification",
            "call",
            _frame(2, call_id, "BootNotification", {**boot_201, "vendor": "x"}),
            False,
        ),
        CorpusFrame(
            "2.0.1 string too long",
            "2.0.1",
            "BootNotification",
            "call",
            _frame(
                2,
                call_id,
                "BootNotification",
                {**boot_201, "chargingStation": {"model": "M" * 30, "vendorName": "V" * 60}},
            ),
            False,
        ),
    ]
