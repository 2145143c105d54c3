"""The analyst console's files as the app serves them (in-process; no engine needed to serve static files).

The browser journey itself is tests/e2e/test_ui.py; this checks the contract around it: strict CSP on every
file, no inline code for that CSP to block, no HTML-string DOM writes in the scripts, the Grafana link
escaped, the `ui_enabled` switch, and that an installed wheel ships every file.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
import tomllib
from fastapi.testclient import TestClient
from pydantic import ValidationError

from phishlens.server.app import create_app
from phishlens.server.routes.ui import UI_DIR
from phishlens.server.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # no `with`: the lifespan (engine, registry) never starts; the console's routes do not need it
    settings = Settings(
        adapter_roots=[tmp_path_factory.mktemp("no-adapters")],
        ui_grafana_url='https://grafana.example/d/phishlens?from=now-6h&x="><script>',
    )
    return TestClient(create_app(settings))


def test_every_file_is_served_with_the_strict_csp(client):
    assert client.get("/ui", follow_redirects=False).headers["location"] == "ui/"
    names = sorted(p.name for p in UI_DIR.iterdir())
    assert {"index.html", "app.js", "api.js", "view.js", "app.css"} <= set(names)
    for name in names:
        r = client.get(f"/ui/{name}" if name != "index.html" else "/ui/")
        assert r.status_code == 200, name
        csp = r.headers["content-security-policy"]
        assert {
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        } <= {d.strip() for d in csp.split(";")}
        assert "unsafe" not in csp and r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
    missing = client.get("/ui/../server/settings.py")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_no_inline_code_and_no_html_string_writes(client):
    page = client.get("/ui/").text
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all('src="' in s for s in scripts)  # every script is a file the CSP allows
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", page)  # ... with no inline body
    assert not re.search(r"\sstyle\s*=", page) and "<style" not in page
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # no CDN: works offline
    for js in UI_DIR.glob("*.js"):
        code = js.read_text()
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in code, (js.name, sink)  # text goes in via textContent / DOM nodes only


def test_grafana_link_is_escaped_into_the_page(client):
    page = client.get("/ui/").text
    meta = re.search(r'<meta name="phishlens-grafana-url" content="([^"]*)">', page)
    assert meta and meta.group(1) == (
        "https://grafana.example/d/phishlens?from=now-6h&amp;x=&quot;&gt;&lt;script&gt;"
    )
    with pytest.raises(ValidationError):
        Settings(ui_grafana_url="javascript:alert(1)")


def test_ui_disabled_serves_nothing(tmp_path):
    app = create_app(Settings(adapter_roots=[tmp_path], ui_enabled=False))
    c = TestClient(app)
    assert c.get("/ui/").status_code == 404 and c.get("/ui/app.js").status_code == 404


def test_the_wheel_ships_every_console_file():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "phishlens.server.ui" in pyproject["tool"]["setuptools"]["packages"]
    globs = pyproject["tool"]["setuptools"]["package-data"]["phishlens.server.ui"]
    for path in UI_DIR.iterdir():
        assert any(fnmatch.fnmatch(path.name, g) for g in globs), f"{path.name} is not in package-data"
