"""The cameras: the overview every role the policy allows reads (``cameras.list``: name, place, node,
status, retention; never footage, never a source), and the administrator's form to add, edit, disable and
enable this node's cameras (``administer``; vms/ops/camera_admin.py does the change, checked exactly as
``vms config check``, audited, applied without a restart).

Credentials are write-only: the form shows the source without them and only whether the camera has some;
the password field is always empty.  A refusal of the config check is shown next to the field it names.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from api.web.i18n import translator
from api.web.render import error_text, lang_of, render
from api.web.session import Administrator, CameraReader, FormDep, status_of
from vms.core.camera_config import CAMERA_ID, split_credentials
from vms.core.errors import DomainError
from vms.ops import camera_admin, camera_onvif, onvif
from vms.ops.camera_list import camera_list

router = APIRouter(include_in_schema=False)
_DONE = ("added", "saved", "disabled", "enabled", "unchanged")


@router.get("/cameras")
def overview(request: Request, principal: CameraReader, done: str = "", camera: str = ""):
    app = request.app.state.appliance
    return render(request, "cameras.html", {
        "cameras": camera_list(app), "node_id": app.config.node_id, "now": app.clock.now_us(),
        "done": done if done in _DONE else "", "done_camera": camera if CAMERA_ID.match(camera or "") else "",
        "mine": {c.id for c in app.config.cameras},
    })


def _form(request: Request, values: dict, *, new: bool, error: str = "", field: str = "", status: int = 200,
          onvif_state: dict | None = None):
    return render(request, "camera_form.html", {"values": values, "new": new, "error": error, "field": field,
                                                "onvif": onvif_state or {}}, status=status)


@router.get("/admin/cameras/new")
def new_form(request: Request, principal: Administrator):
    return _form(request, {"id": "", "name": "", "place": "", "source": "", "retain_days": "14",
                           "transport": "tcp", "enabled": True, "has_credentials": False}, new=True)


@router.get("/admin/cameras/{camera_id}")
def edit_form(request: Request, principal: Administrator, camera_id: str):
    cam = request.app.state.appliance.config.camera(camera_id)
    if cam is None:
        return _not_here(request)
    return _form(request, camera_admin.form_values(cam), new=False)


def _not_here(request: Request):
    message = translator(lang_of(request))("cameras.not_here")
    return render(request, "message.html", {"message": message, "status": 404}, status=404)


def _edit_of(form) -> camera_admin.CameraEdit:
    return camera_admin.CameraEdit(
        name=form.get("name"), place=form.get("place"), source=form.get("source"),
        retain_days=form.get("retain_days"), transport=form.get("transport") or "tcp",
        enabled=form.get("enabled") == "on", username=form.get("username"), password=form.get("password"),
        clear_credentials=form.get("clear_credentials") == "on",
    )


def _typed(form, camera_id: str, has_credentials: bool) -> dict:
    """What the administrator typed, shown again with the refusal (never the user name or the password)."""
    source = split_credentials(form.get("source"))[0]
    return {"id": camera_id, "name": form.get("name"), "place": form.get("place"), "source": source,
            "retain_days": form.get("retain_days"), "transport": form.get("transport") or "tcp",
            "enabled": form.get("enabled") == "on", "has_credentials": has_credentials}


@router.post("/admin/cameras/new")
def add(request: Request, principal: Administrator, form: FormDep):
    app = request.app.state.appliance
    camera_id = form.get("id").strip()
    try:
        camera_admin.add_camera(app, principal.actor, camera_id, _edit_of(form))
    except DomainError as exc:
        return _refused(request, exc, _typed(form, camera_id, False), new=True)
    return RedirectResponse(f"/cameras?done=added&camera={camera_id}", status_code=303)


@router.post("/admin/cameras/{camera_id}")
def change(request: Request, principal: Administrator, camera_id: str, form: FormDep):
    app = request.app.state.appliance
    cam = app.config.camera(camera_id)
    if cam is None:
        return _not_here(request)
    op = form.get("op")
    try:
        if op in ("disable", "enable"):
            changed = camera_admin.set_enabled(app, principal.actor, camera_id, op == "enable")
            done = op + "d"
        else:
            changed = camera_admin.edit_camera(app, principal.actor, camera_id, _edit_of(form))
            done = "saved"
    except DomainError as exc:
        return _refused(request, exc, _typed(form, camera_id, cam.has_credentials), new=False)
    return RedirectResponse(f"/cameras?done={done if changed else 'unchanged'}&camera={camera_id}",
                            status_code=303)


def _refused(request: Request, exc: DomainError, values: dict, *, new: bool):
    field = getattr(exc, "field", "")
    return _form(request, values, new=new, error=error_text(request, exc), field=field, status=status_of(exc))


@router.post("/admin/cameras/onvif/lookup")  # two segments: never a camera id
def onvif_lookup(request: Request, principal: Administrator, form: FormDep):
    """The form's ONVIF buttons (docs/design/cameras.md, "ONVIF"): ``onvif=find`` lists the devices answering a
    probe, ``onvif_pick`` puts one's address in the device field, ``onvif=stream`` asks the device (with the
    credentials typed in the form) for its RTSP address and fills the source field.  The page comes back with
    what was typed, never the user name or the password (they go to the device, not back to the page)."""
    app = request.app.state.appliance
    editing = form.get("editing").strip()
    cam = app.config.camera(editing) if editing else None
    if editing and cam is None:
        return _not_here(request)
    values = _typed(form, editing or form.get("id").strip(), cam.has_credentials if cam else False)
    values["onvif_target"] = form.get("onvif_target").strip()[:200]
    values["onvif_address"] = form.get("onvif_address").strip()[:500]
    state: dict = {}
    try:
        if form.get("onvif_pick"):
            values["onvif_address"] = onvif.device_url(form.get("onvif_pick"))
        elif form.get("onvif") == "find":
            state["devices"] = camera_onvif.find_cameras(app, principal.actor, values["onvif_target"])
        elif form.get("onvif") == "stream":
            found = camera_onvif.fetch_stream_address(app, principal.actor, values["onvif_address"],
                                                      form.get("username"), form.get("password"))
            values["source"], state["found"] = found.uri, found
    except onvif.OnvifError as exc:
        state["error"] = error_text(request, exc)
        return _form(request, values, new=cam is None, status=status_of(exc), onvif_state=state)
    return _form(request, values, new=cam is None, onvif_state=state)
