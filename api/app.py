"""The FastAPI application: ``create_app(appliance)``.

Routers: ``api/routes/*`` (auth, users, tickets, footage, audit), all under
``/api``; OpenAPI at ``/api/openapi.json``, docs at ``/api/docs`` (api/docs.py:
Swagger UI from the appliance's own files, no CDN).  Every router except
sign-in and health requires a signed-in user (api/deps.py); the web UI adds its
pages on top of the same app and dependencies.  Errors are problem+json
(api/problems.py).  api/headers.py adds the security headers (CSP on HTML,
nosniff, HSTS over HTTPS).  While the app runs (lifespan), a timer expires
tickets whose access window has ended, so their holds are released on time.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api import docs, problems, web
from api.headers import SecurityHeaders
from api.routes import (
    account_changes,
    audit,
    auth,
    deliveries,
    doorlog,
    exports,
    finding,
    footage,
    internal,
    live,
    ops,
    player,
    tickets,
    users,
)
from api.routes.footage import ClipCache
from vms.access.tickets import ExpiryTimer
from vms.evidence import export_jobs
from vms.evidence.delivery import PackageExpiryTimer

VERSION = "1"


def create_app(app, *, clock=None, expiry_interval_s: float = 60.0) -> FastAPI:
    """Build the API for an opened :class:`vms.appliance.Appliance`.

    ``clock`` replaces the appliance's clock (tests pass a FakeClock)."""
    if clock is not None:
        app.clock = clock

    @asynccontextmanager
    async def lifespan(_api: FastAPI):
        # sync routes run in this many threads at once; more only take turns on the GIL (docs/benchmarks.md)
        anyio.to_thread.current_default_thread_limiter().total_tokens = app.config.api.worker_threads
        timer = ExpiryTimer(app, interval_s=expiry_interval_s)
        timer.start()
        packages = PackageExpiryTimer(app, interval_s=expiry_interval_s)  # deletes packages whose delivery ended
        packages.start()
        try:
            yield
        finally:
            timer.stop()
            packages.stop()
            export_jobs.shutdown(app)  # running exports are cancelled and leave no package

    api = FastAPI(
        title="vms appliance API", version=VERSION, lifespan=lifespan,
        openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,  # docs: api/docs.py
        description="Four-eyes access to recorded footage: tickets, gated playback, audit trail. "
                    "Errors are RFC 9457 problem+json. See docs/api.md.",
    )
    api.state.appliance = app
    api.state.clip_cache = ClipCache()
    problems.install(api)
    api.add_middleware(SecurityHeaders)

    @api.get("/api/health", tags=["meta"], summary="Liveness (no sign-in needed)")
    async def health() -> dict:  # nothing blocking: answered on the event loop
        return {"status": "ok"}

    api.include_router(auth.public)
    api.include_router(auth.router)
    api.include_router(users.router)
    api.include_router(account_changes.router)
    api.include_router(tickets.router)
    api.include_router(footage.router)
    api.include_router(finding.router)
    api.include_router(player.router)  # the continuous player: plays and their fragments
    api.include_router(live.router)
    api.include_router(audit.router)
    api.include_router(ops.router)
    api.include_router(exports.router)
    api.include_router(deliveries.router)
    api.include_router(deliveries.public)  # /d/{token}: recipients without an account
    api.include_router(doorlog.router)
    api.include_router(doorlog.controllers)  # a door controller's push, with its own token
    api.include_router(internal.router)  # node-to-node (vms/cluster.py); not in the schema
    docs.install(api)  # /api/docs from local files
    web.install(api)  # the web UI (api/web/): pages on the same app and dependencies
    return api
