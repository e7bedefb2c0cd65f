"""Which source URLs a front end may show as a link.

A knowledge file's front matter carries a `source_url`; a malformed one (a space, a control
character, no host, thousands of characters, `javascript:`) makes Discord refuse the whole message
(error 50035) and produces a broken link on Slack, whose link syntax `<url|text>` also cannot carry
a `|`, `<` or `>`. The builder drops such a URL with a warning (`url_problem` says why), and front
ends link only URLs that pass here again, showing the document path instead otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

# Discord's limit for an embed URL; Slack has none documented, the same bound is used everywhere
MAX_URL_LENGTH = 2048
# ASCII characters RFC 3986 does not allow in a URL: Slack's `<url|text>` breaks on `|`, `<`, `>`,
# and Discord's URL check refuses what is not a valid URL. Percent-encode them (`|` is %7C).
_NOT_IN_URLS = '"<>\\^`{|}'
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_problem(value: object, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """Why `value` cannot be a link on Slack and Discord (None when it can): http(s), a host, at
    most `max_length` characters, no spaces, control characters or characters URLs may not hold."""
    if not isinstance(value, str):
        return f"it is not text but {type(value).__name__}"
    if not value:
        return "it is empty"
    if len(value) > max_length:
        return f"it is {len(value):,} characters long (at most {max_length:,})"
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in value):
        return "it contains spaces or control characters"
    bad = sorted({ch for ch in value if ch in _NOT_IN_URLS})
    if bad:
        shown = ", ".join(f"{ch!r} (%{ord(ch):02X})" for ch in bad)
        return f"it contains {shown}, which a link may not hold: percent-encode it"
    if _BAD_PERCENT.search(value):
        return "it has a '%' that is not a percent-encoding (write %25)"
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as err:
        return f"it cannot be parsed ({err})"
    if parts.scheme.lower() not in ("http", "https"):
        return "only http:// and https:// links are kept"
    if not parts.hostname:
        return "it has no host name"
    if not port_ok:
        return "its port is out of range"
    return None


def safe_web_url(url: str | None, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """`url` when it can be a link (see `url_problem`); otherwise None."""
    if not url or url_problem(url, max_length=max_length):
        return None
    return url
