"""The queue dashboard's static files, served at /ui/ without a token (the page asks for one and sends it
to the JSON API as a bearer token; the files themselves hold no data).

Only the names in a fixed map are served, from the package's `ui` folder; nothing in the request path
reaches the file system, so `/ui/../x` or `/ui/%2e%2e/x` is simply a name not in the map (404). Every
answer carries a strict Content-Security-Policy: scripts, styles and API calls from this origin only,
no inline code, no framing.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from kubeforge.scheduler.api_io import HTTPError, Response, allow

UI_PREFIX = "/ui"
_HTML = b"text/html; charset=utf-8"
_FILES: dict[str, tuple[str, bytes]] = {
    "/ui/": ("index.html", _HTML),
    "/ui/index.html": ("index.html", _HTML),
    "/ui/dashboard.js": ("dashboard.js", b"text/javascript; charset=utf-8"),
    "/ui/dashboard.css": ("dashboard.css", b"text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-cache"),
)


def is_dashboard_path(path: str) -> bool:
    """Whether the request is for the dashboard (its files or anything else under /ui)."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


@cache
def _read(name: str) -> bytes:
    return files("kubeforge.scheduler").joinpath("ui", name).read_bytes()


def dashboard_response(method: str, path: str) -> Response:
    """One of the dashboard's files (GET only); /ui redirects to /ui/, any other name is 404."""
    allow(method, "GET")
    if path == UI_PREFIX:
        return Response(308, b"", _HTML, (*_HEADERS, (b"location", b"/ui/")))
    found = _FILES.get(path)
    if found is None:
        raise HTTPError(404, f"no dashboard file {path!r}; the dashboard is at /ui/")
    name, content_type = found
    return Response(200, _read(name), content_type, _HEADERS)


__all__ = ["CONTENT_SECURITY_POLICY", "dashboard_response", "is_dashboard_path"]
