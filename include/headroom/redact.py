"""Masking credentials in text from elsewhere (a remote answer, a URL, a DSN) before it reaches an exception or a log.

``redact(text)`` keeps the text readable and replaces each secret with ``***``:

- header lines ``Authorization: ...``, ``Proxy-Authorization``, ``Cookie``, ``X-Api-Key`` and similar, as text or as
  JSON / a Python dict;
- ``Bearer <token>``, ``Basic <base64>``, ``Token <token>`` wherever they stand, and a bare base64 ``user:password``;
- the password in ``scheme://user:password@host`` (URLs and DSNs; the user name stays);
- ``password=``, ``token=``, ``secret=``, ``api_key=``, ``signature=`` and similar pairs (query strings, libpq DSNs,
  form bodies, YAML-like ``key: value``);
- AWS access key ids;
- and exactly, every value in ``secrets`` (a connection's password or token), in plain and base64 forms.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

MASK = "***"

_HEADERS = r"(?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|x-access-token|private-token"
_KEYS = (r"pass(?:word|wd)?|pwd|secret|client[-_]?secret|(?:access|refresh|id|auth|session|api|private)?[-_]?token|"
         r"api[-_]?key|apikey|access[-_]?key|secret[-_]?access[-_]?key|private[-_]?key|signature|sig|credentials?")

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Authorization: Basic abc" as a header line: the whole value to the end of the line.
    (re.compile(rf"(?im)(?<![A-Za-z0-9-])((?:{_HEADERS})\s*:\s*)(?![\s\"'{{\[])[^\r\n]+"), rf"\g<1>{MASK}"),
    # "Authorization": "Bearer x" / 'password': 'x' in JSON or a dict's repr.
    (re.compile(rf"""(?i)(["'](?:{_HEADERS}|{_KEYS})["']\s*:\s*)(["'])(?:\\.|(?!\2).)*\2"""), rf"\g<1>\g<2>{MASK}\g<2>"),
    # An auth scheme with its credentials in running text.
    (re.compile(r"(?i)\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\g<1>\g<2>{MASK}"),
    # Other schemes only when the word looks like a credential (a digit or symbol in it: not "Basic realm").
    (re.compile(r"(?i)\b(Basic|Token|Digest)(\s+)(?=[A-Za-z0-9\-._~+/]*[0-9+/_.~-])[A-Za-z0-9\-._~+/]+=*"), rf"\g<1>\g<2>{MASK}"),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]*):([^\s/@]+)@"), rf"\g<1>:{MASK}@"),
    # key=value and key: value (unquoted).
    (re.compile(rf"(?i)(?<![A-Za-z0-9])((?:{_KEYS})\s*[=:]\s*)(?![\"']|\*\*\*)[^\s&;,'\"}}\]]+"), rf"\g<1>{MASK}"),
    # AWS access key ids.
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), MASK),
)
_BASE64_WORD = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])")


def _is_user_password(word: str) -> bool:
    """Whether ``word`` is base64 of a printable ``user:password`` (HTTP Basic credentials)."""
    if len(word) % 4:
        return False
    try:
        decoded = base64.b64decode(word, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return decoded.count(":") == 1 and decoded.isprintable() and " " not in decoded and not decoded.startswith(":")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every credential in it replaced by ``***``.

    :param secrets: exact values to mask too, with their base64 forms (values under 4 characters are ignored:
        they would mask ordinary words).
    """
    if not text:
        return text
    known = [s for s in secrets if s and len(s) >= 4]
    known += [base64.b64encode(s.encode()).decode().rstrip("=") for s in known]
    for secret in sorted(set(known), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _BASE64_WORD.sub(lambda m: MASK if _is_user_password(m.group(0)) else m.group(0), text)
