"""Every form a vendor uses to ask for a delay."""

from __future__ import annotations

import httpx
import pytest

from streams.providers.base import duration_s, retry_after_s


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "3600"}, None),  # beyond the cap: fall back rather than wait
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # 07:28:00 on that day
    assert retry_after_s(httpx.Headers(headers), now=now) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("27s", 27.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("500s", None),
        ("27", None),
        (None, None),
        (3, None),
    ],
)
def test_protobuf_durations(value: object, expected: float | None) -> None:
    assert duration_s(value) == expected
