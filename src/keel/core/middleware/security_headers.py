"""The security headers every HTTP response carries (added by the request-context layer)."""

from __future__ import annotations

DOCS_PATH = "/docs"

# Everything keel answers is JSON (or plain text), which no browser should
# run scripts, styles or frames from.
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs page loads Swagger UI from /static and runs one inline bootstrap script.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


def security_headers(hsts_max_age_s: int, *, docs_page: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers for API responses, or for the docs page (``docs_page``)."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"content-security-policy", (_DOCS_CSP if docs_page else _API_CSP).encode()),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if hsts_max_age_s > 0:
        headers.append((b"strict-transport-security", f"max-age={hsts_max_age_s}; includeSubDomains".encode()))
    return headers
