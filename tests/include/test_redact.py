"""redact(): credentials in any form are masked in text that came from elsewhere; the rest stays readable."""

from __future__ import annotations

import base64

import pytest

from include.headroom.redact import redact

PAIR = base64.b64encode(b"capacity-bot:Tr0ub4dor&3").decode()


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        (f"request headers:\nAuthorization: Basic {PAIR}\nHost: x", PAIR, "Authorization: ***"),
        ("Authorization: Bearer eyJhbGciOi.c2VjcmV0.sig-9f8e", "eyJhbGciOi", "Authorization: ***"),
        ('{"headers": {"Authorization": "Bearer abc.def-123"}}', "abc.def-123", '"Authorization": "***"'),
        ("echo: Bearer abc.def-123 was refused", "abc.def-123", "Bearer ***"),
        (f"credentials {PAIR} rejected", PAIR, "credentials *** rejected"),
        ("postgresql://headroom:pg-S3cret@db:5432/x failed", "pg-S3cret", "postgresql://headroom:***@db"),
        ("host=db port=5432 user=headroom password=pg-S3cret dbname=x", "pg-S3cret", "password=*** dbname=x"),
        ("GET /q?query=up&api_key=k-123456&x=1", "k-123456", "api_key=***&x=1"),
        ("{'password': 'hunter22'}", "hunter22", "'password': '***'"),
        ("key AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE", "key *** denied"),
    ],
)
def test_credentials_in_any_form_are_masked(text, secret, kept):
    out = redact(text)
    assert secret not in out
    assert kept in out


def test_known_secrets_and_their_base64_are_masked():
    out = redact("token was s3cr3t-value; encoded czNjcjN0LXZhbHVl", secrets=["s3cr3t-value"])
    assert "s3cr3t-value" not in out and "czNjcjN0LXZhbHVl" not in out


def test_ordinary_text_is_left_alone():
    text = "prometheus refused query 'sum(rate(x[5m]))': bad_data: parse error at char 12; Basic realm=\"prom\""
    assert redact(text) == text
