"""The web UI: server-rendered pages for every role on the API's FastAPI app.

``install(api)`` adds the pages, the static files (``/static``) and the
handlers that turn "not signed in" into a redirect to ``/signin``.  Pages call
the domain (vms/) directly with the same checks as the JSON API; forms carry
the session's CSRF token (api/deps.py).  docs/web-ui.md shows the pages.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import (
    pages_admin,
    pages_audit,
    pages_auth,
    pages_cameras,
    pages_doorlog,
    pages_export,
    pages_health,
    pages_live,
    pages_tickets,
    session,
)

STATIC = Path(__file__).resolve().parent.parent / "static"


def routers() -> tuple:
    """The page routers (none of them in the OpenAPI schema)."""
    return (pages_auth.router, pages_tickets.router, pages_export.router, pages_audit.router, pages_admin.router,
            pages_live.router, pages_doorlog.router, pages_cameras.router,
            pages_health.router)


def install(api: FastAPI) -> None:
    session.install_handlers(api)
    api.state.delivery_page = pages_export.delivery_page  # /d/{token} in a browser (api/routes/deliveries.py)
    api.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in routers():
        api.include_router(router)
