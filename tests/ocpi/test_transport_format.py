"""Transport helpers without a server: the token header both ways, DateTimes at the edges,
and the envelope."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.ocpi import transport


def test_token_header_base64_and_raw() -> None:
    token = "abc-123_XYZ"
    assert transport.authorization_header(token) == "Token YWJjLTEyM19YWVo="
    assert transport.authorization_header(token, raw=True) == "Token abc-123_XYZ"
    assert transport.token_candidates("Token YWJjLTEyM19YWVo=") == [token, "YWJjLTEyM19YWVo="]
    # A raw token that is not base64 of printable ASCII is tried as given only.
    assert transport.token_candidates("Token abc-123_XYZ") == [token]
    assert transport.token_candidates("token abc") == ["abc"]


@pytest.mark.parametrize(
    "header", [None, "", "Token", "Token ", "Bearer abc", "abc", "Token " + "x" * 300]
)
def test_unusable_headers_give_no_token(header: str | None) -> None:
    assert transport.token_candidates(header) == []


def test_datetimes() -> None:
    assert transport.parse_datetime("2026-01-02T03:04:05Z") == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    # No designator: UTC (transport_and_format).
    assert transport.parse_datetime("2026-01-02T03:04:05") == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert transport.parse_datetime("2026-01-02T04:04:05+01:00").hour == 3
    assert transport.format_datetime(datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=UTC)) == (
        "2026-01-02T03:04:05Z"
    )
    for bad in ("", "yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        with pytest.raises(ValueError, match=r"DateTime|isoformat"):
            transport.parse_datetime(bad)


def test_envelope() -> None:
    body = transport.envelope({"a": 1})
    assert body["data"] == {"a": 1}
    assert body["status_code"] == 1000
    assert transport.parse_datetime(body["timestamp"])
    error = transport.envelope(None, transport.OcpiStatus.INVALID_PARAMETERS, "bad")
    assert "data" not in error
    assert error["status_code"] == 2001
    assert error["status_message"] == "bad"


def test_page_parameters() -> None:
    params = transport.PageParams.parse({"offset": "5", "limit": "5000"}, max_limit=250)
    assert (params.offset, params.limit) == (5, 250)
    for query in ({"offset": str(2**63)}, {"offset": "-1"}, {"limit": "x"}, {"date_to": "soon"}):
        with pytest.raises(transport.OcpiError) as raised:
            transport.PageParams.parse(query)
        assert raised.value.status_code == 2001
    with pytest.raises(transport.OcpiError):
        transport.PageParams.parse({}, require_date_from=True)
