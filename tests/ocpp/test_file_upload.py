"""Uploading diagnostics and logs: the target URL, what is logged of a location, and a real
PUT to a loopback HTTP server with retries."""

from __future__ import annotations

import logging

import pytest

from gateway.ocpp.file_upload import (
    UploadError,
    UploadRequest,
    location_problem,
    shown,
    target_url,
    upload,
)
from tests.ocpp.upload_server import UploadServer


def test_the_file_name_is_appended_to_a_directory_location_only() -> None:
    assert target_url("https://h/logs/", "a b.log") == "https://h/logs/a%20b.log"
    assert target_url("https://h/logs/exact.bin", "a.log") == "https://h/logs/exact.bin"


def test_credentials_in_a_location_are_never_shown() -> None:
    assert shown("https://user:secret@h:8443/up/") == "https://h:8443/up/"
    assert shown("https://h/up/") == "https://h/up/"


def test_only_http_and_https_locations_are_accepted() -> None:
    assert location_problem("https://h/up/") is None
    problem = location_problem("ftp://user:secret@h/up/")
    assert problem is not None
    assert "ftp" in problem
    assert "secret" not in problem
    assert location_problem("http:///nohost") is not None


async def test_an_upload_retries_and_never_logs_the_location_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway")
    server = UploadServer()
    await server.start()
    try:
        broken = server.location("broken").replace("http://", "http://evgw:hunter2@")
        with pytest.raises(UploadError) as refused:
            await upload(UploadRequest(broken, "f.log", retries=2, retry_interval_s=0), b"x")
        await upload(UploadRequest(server.location(), "f.log"), b"payload")
    finally:
        await server.stop()
    assert server.failed_attempts == 3
    assert "HTTP 500" in str(refused.value)
    assert server.files == {"/upload/f.log": b"payload"}
    assert "hunter2" not in caplog.text
    assert "hunter2" not in str(refused.value)
