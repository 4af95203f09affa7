"""What keeps the pages safe: the CSRF rule, a return path that cannot leave the site, and the response headers."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.datastructures import Headers

from grantflow.errors import PermissionDenied

# No inline script or style anywhere: everything the pages run or wear comes from /ui/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
SAME_SITE_FETCHES = {"same-origin", "none"}


def check_same_origin(headers: Headers) -> None:
    """A state-changing request must come from our own pages: Sec-Fetch-Site and Origin, when sent, say so.

    The Origin's host and port are compared with the Host the request was sent to, not its scheme: behind a
    TLS-terminating proxy the browser's origin is https while grantflow itself is spoken to over http.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
        raise PermissionDenied("this form was sent from another site")
    origin = headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != headers.get("host", ""):
        raise PermissionDenied("this form was sent from another site")


def check_csrf_token(sent: str | None, expected: str) -> None:
    """The session's token must come back with the form (or in X-CSRF-Token), compared in constant time."""
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied("the form has expired or did not come from grantflow; reload the page and try again")


def safe_return_path(value: str | None, default: str = "/") -> str:
    """Only a path on this site: no scheme, no host, no `//` or `/\\` that a browser would read as one."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(c in value for c in "\r\n\t\\"):
        return default
    return value
