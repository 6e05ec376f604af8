"""Masking credentials in text that came from elsewhere (a remote answer, a URL, a DSN) before it reaches an error or a log.

``redact(text)`` replaces the secret part with ``***`` and keeps the rest readable:

- ``Authorization``/``Proxy-Authorization``/``Cookie``/API-key headers, in ``Name: value`` or JSON/dict form;
- ``Bearer <token>``, ``Basic <base64>``, ``Token <token>`` wherever they appear, and a bare base64
  ``user:password`` pair;
- ``user:password@`` in URLs and DSNs (the user name is kept);
- ``password=``, ``token=``, ``api_key=``, ``secret=``, signature and similar pairs in query strings, libpq
  DSNs, JSON and YAML-like text;
- AWS access key ids (``AKIA...``);
- and, exactly, any ``secrets`` the caller knows (a connection's password or token).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

MASK = "***"

# Names whose value is a secret, as a query/DSN/JSON key (matched case-insensitively, '-' or '_' between words).
_SECRET_KEYS = (
    r"pass(?:word|wd)?|pwd|secret|client[-_]?secret|(?:access|refresh|id|auth|session|api|private)?[-_]?token|"
    r"api[-_]?key|apikey|access[-_]?key|secret[-_]?access[-_]?key|private[-_]?key|x[-_]amz[-_](?:signature|credential|security[-_]token)|"
    r"sig|signature|credentials?|auth"
)
_HEADER_NAMES = r"(?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-access-token|private-token"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Headers as text: "Authorization: Basic abc", "X-Api-Key: k" (the value to the end of the line).
    (re.compile(rf"(?im)((?<![A-Za-z0-9-])(?:{_HEADER_NAMES})\s*:\s*)(?![\s\"'\[{{])[^\r\n]+"), rf"\g<1>{MASK}"),
    # JSON or repr of a dict: "Authorization": "Bearer x" / 'password': 'x'.
    (re.compile(rf"""(?i)(["'](?:{_HEADER_NAMES}|{_SECRET_KEYS})["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2"""), rf"\g<1>\g<2>{MASK}\g<2>"),
    # An auth scheme and its credentials anywhere in running text.
    (re.compile(r"(?i)\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\g<1>\g<2>{MASK}"),
    # Other schemes only when the word looks like a credential (not "Token expired", "Basic realm").
    (re.compile(r"\b(Basic|Token|Digest|Negotiate|basic|token)(\s+)(?=[A-Za-z0-9\-._~+/]*[0-9A-Z+/._~-])[A-Za-z0-9\-._~+/]+=*"),
     rf"\g<1>\g<2>{MASK}"),
    # user:password@ in URLs and DSNs: keep the user, mask the password.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]*):([^\s/@]+)@"), rf"\g<1>:{MASK}@"),
    # key=value in query strings, libpq DSNs, form bodies; key: value in YAML-like text (unquoted values).
    (re.compile(rf"(?i)(?<![A-Za-z0-9])((?:{_SECRET_KEYS})\s*[=:]\s*)(?![\"']|\*\*\*)[^\s&;,'\"}}\]]+"), rf"\g<1>{MASK}"),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
)
_BASE64_WORD = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])")


def _is_basic_pair(word: str) -> bool:
    """Whether ``word`` is base64 of a printable ``user:password``."""
    if len(word) % 4:
        return False
    try:
        decoded = base64.b64decode(word, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return decoded.count(":") == 1 and decoded.isprintable() and " " not in decoded and not decoded.startswith(":")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential it holds replaced by ``***``.

    :param secrets: exact values to mask as well (values shorter than 4 characters are ignored, they would
        mask ordinary text).
    """
    if not text:
        return text
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _BASE64_WORD.sub(lambda m: MASK if _is_basic_pair(m.group(0)) else m.group(0), text)
