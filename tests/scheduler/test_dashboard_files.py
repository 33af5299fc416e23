"""The dashboard's static files: a fixed map served GET-only with its content types and a strict CSP,
no token needed for the files, nothing outside the map reachable (raw request paths, no client normalising)."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.dashboard import CONTENT_SECURITY_POLICY
from kubeforge.scheduler.http_server import serving_in_thread
from kubeforge.scheduler.store.sqlite import SqliteStore


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    store = SqliteStore(tmp_path / "kf.db")
    with serving_in_thread(SchedulerAPI(store)) as url:
        yield url
    store.close()


def _get(base: str, raw_path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send `raw_path` exactly as written (http.client does not resolve dot segments)."""
    address = urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        connection.request(method, raw_path)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/ui/", "text/html; charset=utf-8", b"<title>kubeforge queues</title>"),
        ("/ui/index.html", "text/html; charset=utf-8", b'<script src="dashboard.js" defer>'),
        ("/ui/dashboard.js", "text/javascript; charset=utf-8", b"sessionStorage"),
        ("/ui/dashboard.css", "text/css; charset=utf-8", b"focus-visible"),
    ],
)
def test_each_file_is_served_with_its_type_and_a_strict_policy(
    base: str, path: str, content_type: str, marker: bytes
) -> None:
    status, headers, body = _get(base, path)
    assert status == 200 and headers["content-type"] == content_type and marker in body
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY.decode()
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


def test_the_page_has_no_inline_code_and_never_puts_the_token_in_a_url(base: str) -> None:
    page = _get(base, "/ui/")[2].decode()
    script = _get(base, "/ui/dashboard.js")[2].decode()
    assert "<script>" not in page and " style=" not in page and " on" + "click=" not in page
    assert "innerHTML" not in script and "?token" not in script and "Bearer " in script


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../openapi.json",
        "/ui/%2e%2e/%2e%2e/etc/passwd",
        "/ui/..%2f..%2fpyproject.toml",
        "/ui/ui/index.html",
        "/ui/dashboard.py",
        "/ui/__init__.py",
        "/ui/index.html/",
        "/ui//etc/passwd",
    ],
)
def test_a_path_outside_the_file_map_is_refused(base: str, path: str) -> None:
    status, headers, body = _get(base, path)
    assert status == 404 and headers["content-type"] == "application/json"
    assert b"no dashboard file" in body and b"root:" not in body


def test_only_get_is_allowed_and_ui_redirects(base: str) -> None:
    assert _get(base, "/ui/", "POST")[0] == 405
    assert _get(base, "/ui/dashboard.js", "DELETE")[0] == 405
    status, headers, _ = _get(base, "/ui")
    assert status == 308 and headers["location"] == "/ui/"


def test_the_json_api_still_needs_a_token(base: str) -> None:
    assert _get(base, "/v1/jobs")[0] == 401
