"""Live view pages: the cameras a site lets staff watch live, one camera's live picture, and for the
administrator who is watching now.  The picture itself comes from ``GET /api/cameras/{id}/live``
(api/routes/live.py), which audits each session; these pages show no footage of their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from api.web.i18n import translator
from api.web.render import lang_of, render
from api.web.session import Administrator, PageRefused, allow
from vms.access import policy
from vms.access.auth import Principal

router = APIRouter(include_in_schema=False)
LiveViewer = Annotated[Principal, Depends(allow(policy.Action.LIVE_VIEW))]
CameraId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def live_cameras(app) -> list:
    return [c for c in app.config.cameras if c.enabled and c.live_view]


@router.get("/live")
def live_list(request: Request, principal: LiveViewer):
    app = request.app.state.appliance
    return render(request, "live.html", {"cameras": live_cameras(app)})


@router.get("/live/{camera_id}")
def live_camera(request: Request, principal: LiveViewer, camera_id: CameraId):
    app = request.app.state.appliance
    cam = next((c for c in live_cameras(app) if c.id == camera_id), None)
    if cam is None:
        raise PageRefused(404, translator(lang_of(request))("live.unknown").format(camera=camera_id))
    return render(request, "live_camera.html", {"live_cam": cam})


@router.get("/admin/live")
def live_viewers(request: Request, principal: Administrator):
    app = request.app.state.appliance
    return render(request, "admin_live.html", {"viewers": app.live.watching(), "cameras": live_cameras(app)})
