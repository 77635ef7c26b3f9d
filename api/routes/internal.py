"""Node-to-node endpoint: another node fetches a segment this node recorded.

``GET /internal/segments/{id}`` returns the segment file as stored (encrypted)
to a caller that signs the request with the cluster secret (vms/cluster.py).
Not for people and not in the OpenAPI schema; without ``[cluster]`` in the
config it does not exist (404).  Playback and export on the asking node are
audited there, with the ticket; this endpoint logs which node asked.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import FileResponse

from api import deps, problems
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.ops import cluster, metrics

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _secret(request: Request) -> bytes:
    app = deps.appliance(request)
    if app.config.cluster is None:
        raise DomainError(Kind.NOT_FOUND, "this node is not part of a cluster", key=N_("cluster.err.not_cluster"))
    cached = getattr(request.app.state, "cluster_secret", None)
    if cached is None:
        cached = request.app.state.cluster_secret = cluster.read_secret(app.config.cluster.secret_file)
    return cached


@router.get("/internal/segments/{segment_id}")
def segment_file(request: Request, segment_id: Annotated[int, Path(ge=1, le=2**62)]) -> FileResponse:
    secret = _secret(request)
    try:
        caller = cluster.verify(secret, "GET", request.url.path, request.headers)
    except cluster.ClusterAuthError as exc:
        log.warning("refused a node request from %s: %s", deps.client_address(request), exc)
        raise DomainError(Kind.UNAUTHENTICATED, str(exc), key=exc.key, params=exc.params) from None
    app = deps.appliance(request)
    path = cluster.sealed_segment_file(app, segment_id)
    log.info("node %s fetched segment %d", caller, segment_id)
    return FileResponse(path, media_type="application/octet-stream")


def create_internal_app(app) -> FastAPI:
    """For a node that records but does not serve people (``vms serve --no-api``
    with ``[cluster]``): only the node endpoint and liveness/readiness."""
    internal = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    internal.state.appliance = app
    problems.install(internal)
    internal.include_router(router)

    @internal.get("/healthz")
    def healthz() -> dict:
        return metrics.health(app)

    return internal
