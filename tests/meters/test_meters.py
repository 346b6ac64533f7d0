"""Site and circuit meters: shipped profiles read from their simulators over real Modbus TCP,
profile errors, failures as `MeterUnavailable`, and the monitor's staleness rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from gateway.meters import (
    MeterMonitor,
    MeterReading,
    MeterUnavailable,
    ModbusMeter,
    SimulatedMeter,
    load_meter_profile,
    meter_profile_names,
    parse_meter_profile,
)
from gateway.modbus import ModbusTcpLink, ProfileError
from gateway.modbus.simulator_server import SimulatorServer

TEST_TIMEOUT_S = 0.3


@pytest.fixture(params=meter_profile_names())
def meter_profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def served(meter_profile: str) -> AsyncIterator[tuple[SimulatedMeter, ModbusMeter]]:
    charger_currents = (16.0, 16.0, 0.0)
    simulated = SimulatedMeter(
        meter_profile, base_load_a=(10.5, 3.25, 7.0), sources=[lambda: charger_currents]
    )
    server = SimulatorServer([simulated])
    port = await server.start()
    link = ModbusTcpLink("127.0.0.1", port, request_timeout_s=TEST_TIMEOUT_S)
    meter = ModbusMeter(link, None, load_meter_profile(meter_profile), name="site")
    yield simulated, meter
    await link.close()
    await server.stop()


def test_shipped_meter_profiles_are_the_two_documented_meters() -> None:
    assert meter_profile_names() == ["abb-b23", "eastron-sdm630"]


async def test_each_shipped_meter_reads_per_phase_current_power_and_energy(
    served: tuple[SimulatedMeter, ModbusMeter],
) -> None:
    simulated, meter = served
    simulated.energy_import_wh = 1_234_560.0
    reading = await meter.read()
    # Base load plus the charger on L1 and L2; the ABB B23 counts in 0.01 A.
    assert reading.current_a == pytest.approx((26.5, 19.25, 7.0), abs=0.01)
    assert reading.voltage_v == pytest.approx((230.0, 230.0, 230.0), abs=0.1)
    assert reading.power_per_phase_w == pytest.approx((6095.0, 4427.5, 1610.0), abs=1.0)
    assert reading.power_w == pytest.approx(12132.5, abs=1.0)
    # SDM630 counts kWh in a float32, the B23 in 10 Wh steps: both within 10 Wh here.
    assert reading.energy_import_wh == pytest.approx(1_234_560.0, abs=10.0)
    assert reading.energy_export_wh == pytest.approx(0.0)


async def test_a_meter_answering_with_a_modbus_exception_is_unavailable(
    served: tuple[SimulatedMeter, ModbusMeter],
) -> None:
    simulated, meter = served
    simulated.forced_exception = 4
    with pytest.raises(MeterUnavailable, match=r"meter site: .*Modbus exception 4"):
        await meter.read()
    simulated.forced_exception = None
    assert (await meter.read()).current_a[0] == pytest.approx(26.5, abs=0.01)


async def test_a_meter_that_is_gone_is_unavailable() -> None:
    link = ModbusTcpLink("127.0.0.1", 1, request_timeout_s=TEST_TIMEOUT_S)
    meter = ModbusMeter(link, None, load_meter_profile("eastron-sdm630"), name="grid")
    with pytest.raises(MeterUnavailable, match="meter grid: "):
        await meter.read()
    await link.close()


def test_sdm630_reads_in_few_requests() -> None:
    # V, I and P of all phases are contiguous (0x00-0x11): one request; total power and the
    # two energy registers make the others.
    plan = load_meter_profile("eastron-sdm630").plan_reads()
    assert [(request.address, request.count) for request in plan] == [
        (0x00, 18),
        (0x34, 2),
        (0x48, 4),
    ]


_MINIMAL = """
[device]
name = "m"
[registers.current_l1]
address = 0
type = "f32"
unit = "A"
confidence = "V"
[registers.current_l2]
address = 2
type = "f32"
unit = "A"
confidence = "V"
"""


def test_a_meter_profile_without_a_phase_current_is_refused() -> None:
    with pytest.raises(ProfileError, match=r"m\.toml: registers\.current_l3: is required"):
        parse_meter_profile(_MINIMAL, "m.toml")


def test_a_meter_profile_with_a_wrong_unit_is_refused() -> None:
    text = _MINIMAL + '[registers.current_l3]\naddress = 4\ntype = "f32"\nunit = "mA"\n'
    text += 'confidence = "V"\n'
    with pytest.raises(ProfileError, match=r"m\.toml: registers\.current_l3\.unit: 'mA' must"):
        parse_meter_profile(text, "m.toml")


def test_a_meter_profile_with_an_unknown_key_is_refused() -> None:
    text = _MINIMAL + '[registers.current_l3]\naddress = 4\ntype = "f32"\nunit = "A"\n'
    text += 'confidence = "V"\nscael = 2\n'
    with pytest.raises(ProfileError, match=r"m\.toml: registers\.current_l3\.scael: unknown key"):
        parse_meter_profile(text, "m.toml")


class _SteppedClock:
    def __init__(self) -> None:
        self.at = 100.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self.at


class _FlakyMeter:
    name = "flaky"

    def __init__(self) -> None:
        self.answers = True

    async def read(self) -> MeterReading:
        if not self.answers:
            raise MeterUnavailable("meter flaky: no response")
        return MeterReading((1.0, 2.0, 3.0), (230.0, 230.0, 230.0), 1380.0)


async def test_the_monitor_forgets_a_reading_older_than_the_stale_limit() -> None:
    clock = _SteppedClock()
    meter = _FlakyMeter()
    monitor = MeterMonitor(meter, interval_s=1.0, stale_after_s=5.0, clock=clock)
    assert monitor.latest() is None
    await monitor.poll_once()
    assert monitor.online is True
    reading = monitor.latest()
    assert reading is not None
    assert reading.current_a == (1.0, 2.0, 3.0)
    meter.answers = False
    clock.at += 4.0
    await monitor.poll_once()
    assert monitor.online is False
    assert "no response" in monitor.last_error
    assert monitor.latest() is not None  # 4 s old: still trusted
    clock.at += 1.5
    assert monitor.latest() is None  # 5.5 s old: stale, the circuit counts as fully loaded
    meter.answers = True
    await monitor.poll_once()
    assert monitor.online is True
    assert monitor.latest() is not None


def test_the_monitor_refuses_a_stale_limit_inside_the_poll_interval() -> None:
    with pytest.raises(ValueError, match="stale_after_s"):
        MeterMonitor(_FlakyMeter(), interval_s=2.0, stale_after_s=2.0)
