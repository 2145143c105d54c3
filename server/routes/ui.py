"""The analyst console (DESIGN.md §6b): the static files of `server/ui/` under `/ui/`, nothing else.

The page calls the public API only, so this module serves files and holds no logic an API caller lacks.
Every answer carries a strict Content-Security-Policy: scripts, styles and fetches from this origin only,
no inline code, no framing, no form posts. The only server-side rendering is the Grafana link (a setting)
written into a `<meta>` tag of index.html, escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from ..settings import Settings

UI_DIR = Path(__file__).resolve().parents[1] / "ui"
GRAFANA_MARKER = 'name="phishlens-grafana-url" content=""'

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate: a server upgrade must not leave an old app.js in the tab
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


def load_assets(ui_dir: Path, grafana_url: str | None) -> dict[str, tuple[bytes, str]]:
    """name → (body, media type) for every servable file of the flat `ui_dir`, index.html rendered."""
    assets: dict[str, tuple[bytes, str]] = {}
    for path in sorted(ui_dir.iterdir()):
        media = MEDIA_TYPES.get(path.suffix)
        if path.is_file() and media is not None:
            assets[path.name] = (path.read_bytes(), media)
    if "index.html" not in assets:
        raise RuntimeError(f"the console's index.html is missing from {ui_dir} (broken install?)")
    page = assets["index.html"][0].decode()
    if GRAFANA_MARKER not in page:
        raise RuntimeError("index.html lost its phishlens-grafana-url meta tag")
    link = html.escape(grafana_url or "", quote=True)
    page = page.replace(GRAFANA_MARKER, f'name="phishlens-grafana-url" content="{link}"')
    assets["index.html"] = (page.encode(), assets["index.html"][1])
    return assets


def make_router(settings: Settings, ui_dir: Path = UI_DIR) -> APIRouter:
    """Routes serving the console; files are read once here (a fixed set, known at start-up)."""
    assets = load_assets(ui_dir, settings.ui_grafana_url)
    router = APIRouter(include_in_schema=False)

    def answer(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no console file named {name!r}")  # the one error body (errors.py)
        body, media = assets[name]
        return Response(body, media_type=media, headers=SECURITY_HEADERS)

    @router.get("/ui")
    async def ui_root() -> RedirectResponse:  # relative asset and API paths resolve from /ui/
        return RedirectResponse("ui/", status_code=308)

    @router.get("/ui/")
    async def ui_index() -> Response:
        return answer("index.html")

    @router.get("/ui/{name}")
    async def ui_asset(name: str) -> Response:
        return answer(name)

    return router
