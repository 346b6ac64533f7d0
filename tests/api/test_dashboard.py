"""The dashboard in a real browser: Debian's chromium, headless, through selenium and the
system chromedriver (selenium-manager downloads nothing), against a running gateway."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.api.conftest import WITHIN_S, LiveSite, until

BACKGROUND = (0xF3, 0xF5, 0xF8)
"""The page's background colour (dashboard.css)."""
MIN_INK_SHARE = 0.05
"""A page that rendered its data has far more than 5 % of pixels off the background (cards,
bars, chart); a blank or unstyled error page has less."""
L1_COLOUR = (0xC0, 0x39, 0x2B)
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
"""An iPhone 12-14 class viewport."""


@contextmanager
def chromium() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, WITHIN_S)


def sign_in(driver: WebDriver, url: str, token: str) -> None:
    driver.get(url + "/")
    field = wait(driver).until(expected_conditions.visibility_of_element_located((By.ID, "token")))
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait(driver).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chargers [data-charger]")) == 3
    )
    driver.execute_script("window.__sameDocument = true;")


def card_current(driver: WebDriver, charger_id: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'[data-charger="{charger_id}"] .current').text)


def png_pixels(png: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB or RGBA non-interlaced PNG (what
    chromium's screenshots are)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = data
        elif kind == b"IDAT":
            idat += data
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8
    assert colour in (2, 6)
    assert interlace == 0
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        pixels.extend((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels


def canvas_ink(driver: WebDriver) -> dict[str, Any]:
    """How many of the chart canvas's pixels are drawn, and how many in L1's colour."""
    result: dict[str, Any] = driver.execute_script(
        """
        const canvas = document.getElementById("load-chart");
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0, l1 = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] > 0) drawn++;
          const near = (k) => Math.abs(data[i + k] - arguments[k]) < 12;
          if (data[i + 3] > 200 && near(0) && near(1) && near(2)) l1++;
        }
        return {drawn: drawn, l1: l1, total: data.length / 4};
        """,
        *L1_COLOUR,
    )
    return result


async def test_the_dashboard_signs_in_updates_live_and_renders_on_a_phone(
    site: LiveSite,
) -> None:
    with chromium() as driver:
        await asyncio.to_thread(sign_in, driver, site.url, site.admin_token)
        before = await asyncio.to_thread(card_current, driver, "CP-1")

        site.simulators[0].plug_in(rfid="TAG-WEB")
        await until(lambda: site.simulators[0].current_a > 5.0)

        def charging_shown(d: WebDriver) -> bool:
            status = d.find_element(By.CSS_SELECTOR, '[data-charger="CP-1"] .status').text
            return status == "Charging" and card_current(d, "CP-1") != before

        await asyncio.to_thread(wait(driver).until, charging_shown)
        # Pushed, not reloaded: the marker set after sign-in is still there.
        assert await asyncio.to_thread(driver.execute_script, "return window.__sameDocument")
        sessions = await asyncio.to_thread(driver.find_element, By.ID, "sessions")
        assert "TAG-WEB" in sessions.text
        fuse = await asyncio.to_thread(
            driver.find_element, By.CSS_SELECTOR, '[data-circuit="board-A"]'
        )
        assert "/ 32 A" in fuse.text

        # The chart has drawn the L1 line of the rising current.
        await asyncio.to_thread(wait(driver).until, lambda d: canvas_ink(d)["l1"] > 20)
        ink = await asyncio.to_thread(canvas_ink, driver)
        assert ink["drawn"] > 0.01 * ink["total"]

        png = await asyncio.to_thread(driver.get_screenshot_as_png)
        width, height, pixels = png_pixels(png)
        assert width >= 1000
        assert height >= 700
        inked = sum(
            1
            for pixel in pixels
            if max(abs(a - b) for a, b in zip(pixel, BACKGROUND, strict=True)) > 8
        )
        assert inked / len(pixels) > MIN_INK_SHARE

        # A phone: everything in one column, nothing wider than the screen.
        await asyncio.to_thread(driver.execute_cdp_cmd, "Emulation.setDeviceMetricsOverride", PHONE)
        await asyncio.to_thread(
            wait(driver).until,
            lambda d: d.execute_script("return window.innerWidth") == PHONE["width"],
        )
        overflow = await asyncio.to_thread(
            driver.execute_script,
            "return document.documentElement.scrollWidth - window.innerWidth",
        )
        assert overflow <= 0
        cards = await asyncio.to_thread(
            driver.find_elements, By.CSS_SELECTOR, "#chargers [data-charger]"
        )
        lefts = {card.rect["x"] for card in cards}
        assert len(lefts) == 1  # stacked
        assert all(card.rect["x"] + card.rect["width"] <= PHONE["width"] for card in cards)


async def test_the_dashboard_refuses_a_wrong_token(site: LiveSite) -> None:
    def try_wrong_token(driver: WebDriver) -> str:
        driver.get(site.url + "/")
        field = wait(driver).until(
            expected_conditions.visibility_of_element_located((By.ID, "token"))
        )
        field.send_keys("certainly-not-the-token")
        driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
        wait(driver).until(lambda d: d.find_element(By.ID, "login-error").text != "")
        assert not driver.find_element(By.ID, "board").is_displayed()
        return str(driver.find_element(By.ID, "login-error").text)

    with chromium() as driver:
        message = await asyncio.to_thread(try_wrong_token, driver)
    assert message == "Unknown token."


async def test_an_admin_takes_a_charger_out_of_service_a_reader_cannot(site: LiveSite) -> None:
    def status_of(driver: WebDriver, charger_id: str) -> str:
        return str(
            driver.find_element(By.CSS_SELECTOR, f'[data-charger="{charger_id}"] .status').text
        )

    def take_out_of_service(driver: WebDriver) -> None:
        sign_in(driver, site.url, site.admin_token)
        button = driver.find_element(By.CSS_SELECTOR, '[data-charger="CP-2"] button')
        assert button.text == "Take out of service"
        button.click()
        wait(driver).until(lambda d: status_of(d, "CP-2") == "Unavailable")

    def buttons_for_a_reader(driver: WebDriver) -> int:
        driver.execute_script("sessionStorage.clear()")
        sign_in(driver, site.url, site.read_token)
        return len(driver.find_elements(By.CSS_SELECTOR, "#chargers button"))

    with chromium() as driver:
        await asyncio.to_thread(take_out_of_service, driver)
        assert not site.gateway.site.connector("CP-2").operative
        assert await asyncio.to_thread(buttons_for_a_reader, driver) == 0
