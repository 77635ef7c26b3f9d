"""Operations endpoints: ``/healthz`` (liveness), ``/readyz`` (readiness),
``/metrics`` (Prometheus text format; names in docs/design/operations-internals.md).

Liveness and readiness need no sign-in and say nothing private (no paths, URLs
or secrets; see :func:`vms.ops.metrics.ready`).  ``/metrics`` names cameras and
counts, never footage or people, but it is still not for everybody: a scraper
on the appliance itself (loopback, not forwarded by a proxy) needs no credentials, anyone else needs a
bearer token of an admin or auditor (``Authorization: Bearer ...``).
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from api import deps
from vms.access import policy
from vms.ops import metrics

router = APIRouter(tags=["operations"])


def _loopback(request: Request) -> bool:
    """A direct local client.  A request forwarded by a reverse proxy on the same
    host also arrives from loopback, but carries Forwarded/X-Forwarded-For: such a
    request counts as remote, so a proxy never opens /metrics to the world."""
    if "forwarded" in request.headers or "x-forwarded-for" in request.headers:
        return False
    try:
        return ipaddress.ip_address(deps.client_address(request)).is_loopback
    except ValueError:
        return False


@router.get("/healthz", summary="Liveness: the process answers (no sign-in needed)")
def healthz(request: Request) -> dict:
    return metrics.health(deps.appliance(request))


@router.get("/readyz", summary="Readiness: database, master key and storage root usable (no sign-in needed)")
def readyz(request: Request) -> JSONResponse:
    ok, body = metrics.ready(deps.appliance(request))
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse,
            summary="Prometheus metrics (loopback, or a bearer token of an admin or auditor)")
async def prometheus(request: Request) -> PlainTextResponse:
    if not _loopback(request):
        principal = await deps.signed_in(await deps.any_principal(request))
        policy.enforce(policy.role_refusal(principal.role, policy.Action.OPS_READ))
    app = deps.appliance(request)
    text = await run_in_threadpool(metrics.render, app, alarms=getattr(request.app.state, "alarms", None))
    return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)
