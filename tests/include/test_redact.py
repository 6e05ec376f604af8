"""redact() masks credentials in every form a remote answer or a URL can carry them, and keeps the rest readable."""

from __future__ import annotations

import pytest

from include.headroom.redact import redact


@pytest.mark.parametrize("text, expected", [
    ("Authorization: Basic dXNlcjpodW50ZXIy\r\nHost: prom:9090", "Authorization: ***\r\nHost: prom:9090"),
    ("proxy-authorization: Bearer abc", "proxy-authorization: ***"),
    ("X-Api-Key: 5f1c2e", "X-Api-Key: ***"),
    ('{"headers": {"Authorization": ["Bearer eyJ0eXAi.eyJzdWIi.c2ln"], "Accept": "*/*"}}',
     '{"headers": {"Authorization": ["Bearer ***"], "Accept": "*/*"}}'),
    ("{'authorization': 'Basic dXNlcjpodW50ZXIy', 'user-agent': 'requests'}", "{'authorization': '***', 'user-agent': 'requests'}"),
    ("upstream said: Bearer eyJ0eXAi.eyJzdWIi.c2ln (expired)", "upstream said: Bearer *** (expired)"),
    ("credentials dXNlcjpodW50ZXIy were sent", "credentials *** were sent"),
    ("postgresql://headroom:hunter2@db.internal:5432/headroom", "postgresql://headroom:***@db.internal:5432/headroom"),
    ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
    ("host=db port=5432 user=headroom password=hunter2 dbname=h", "host=db port=5432 user=headroom password=*** dbname=h"),
    ("GET /api/v1/query?query=up&api_key=abc123&access_token=zz9&step=60",
     "GET /api/v1/query?query=up&api_key=***&access_token=***&step=60"),
    ("https://s3/b/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F&X-Amz-Signature=9f86d0", "https://s3/b/k?X-Amz-Credential=***&X-Amz-Signature=***"),
    ('{"password": "p\\"w", "user": "u"}', '{"password": "***", "user": "u"}'),
    ("client_secret: abc", "client_secret: ***"),
    ("key id AKIAIOSFODNN7EXAMPLE is unknown", "key id *** is unknown"),
])
def test_credentials_are_masked(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "query_range: bad_data: invalid parameter \"query\": 1:5: parse error",
    "Token expired; sign in again",
    "WWW-Authenticate says Basic realm=prometheus",
    "https://prom.example.com:9090/api/v1/query?query=up&step=60",
    "service checkout-api (tier gold) at 87% of 40 replicas",
    "",
])
def test_ordinary_text_is_kept(text):
    assert redact(text) == text


def test_known_secrets_are_masked_exactly_and_short_ones_ignored():
    assert redact("token value tok-123456 leaked, id 42", ["tok-123456", "42"]) == "token value *** leaked, id 42"
