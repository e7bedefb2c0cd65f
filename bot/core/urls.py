"""Which source URLs a front end may show as a link.

A knowledge file's front matter carries a `source_url`; a malformed one (a space, a control
character, no host, thousands of characters, `javascript:`) makes Discord refuse the whole message
(error 50035) and produces a broken link on Slack. Front ends link only URLs that pass here, and show
the document path instead otherwise.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Discord's limit for an embed URL; Slack has none documented, the same bound is used everywhere
MAX_URL_LENGTH = 2048


def safe_web_url(url: str | None, *, max_length: int = MAX_URL_LENGTH) -> str | None:
    """`url` when it is a plain http(s) URL with a host, no whitespace or control characters and
    at most `max_length` characters; otherwise None."""
    if not url or len(url) > max_length:
        return None
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in url):
        return None
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        return None
    return url
