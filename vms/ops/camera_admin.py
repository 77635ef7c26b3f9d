"""Administrators add, edit, disable and enable this node's cameras; the config file stays the one definition.

A change is made to the TOML file the node runs from (``Appliance.config_path``), never to a second store
(docs/design/cameras.md says why):

1. the file is read and the one camera's table changed with tomlkit (the administrator's comments, order and
   other keys stay as they were);
2. the new text is written to a temporary file beside it (same mode; owner-only when a source carries
   credentials) and checked with :func:`vms.core.config.load_config`, exactly what ``vms config check`` runs.
   A refusal raises :class:`CameraFormError` with the check's message, mapped to the form's field
   (``retain_days`` for ``cameras[N].retain_days``) where it names one; nothing is written;
3. inside the use case's audited transaction the temporary file replaces the config (``os.replace``, then
   the directory is fsynced); the audit entry says which keys changed and their new values, never the
   credentials (only ``"credentials": "changed"`` etc.);
4. the running node applies it through ``Appliance.reload_config`` (``vms serve``: the SIGHUP reloader, so
   the recorder starts, restarts or stops the camera at once); without it (a bare appliance) the appliance's
   config and the index's camera rows follow.

Credentials are write-only: :func:`form_values` gives a camera's source without them and only says whether
it has some; an edit with empty user and password fields keeps them.  One change at a time per data
directory (``flock`` on ``DATA_DIR/config-edit.lock``).  Cameras of other nodes are edited on their node.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.items import AoT

from vms.access.audit import Actor, audited
from vms.core.camera_config import CameraConfig, split_credentials, with_credentials
from vms.core.config import ConfigError, load_config
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

#: the form's fields, in the order of the page
FIELDS = ("id", "name", "place", "source", "username", "password", "retain_days", "transport", "enabled")
_KEY = re.compile(r"^cameras\[(\d+)\](?:\.([a-z_]+))?")
_FIELD_OF_KEY = {"legal_max_override": "retain_days", "id": "id", "name": "name", "place": "place",
                 "source": "source", "retain_days": "retain_days", "transport": "transport", "enabled": "enabled"}


class CameraFormError(DomainError):
    """The config check refused the change: ``field`` is the form field it names ("" for the whole form)."""

    def __init__(self, message: str, field: str = "", kind: Kind = Kind.INVALID, *, key: str = "",
                 params: dict | None = None):
        super().__init__(kind, message, key=key, params=params)
        self.field = field


@dataclass(frozen=True)
class CameraEdit:
    """What the administrator typed.  Empty ``username`` and ``password`` keep the credentials a camera has
    (``clear_credentials`` removes them); ``retain_days`` is the text typed (the config check judges it)."""

    name: str
    place: str
    source: str
    retain_days: str
    transport: str = "tcp"
    enabled: bool = True
    username: str = ""
    password: str = ""
    clear_credentials: bool = False


def form_values(cam: CameraConfig) -> dict:
    """A camera as the edit form shows it: the source without credentials; never the user or the password."""
    return {"id": cam.id, "name": cam.name or "", "place": cam.place, "source": split_credentials(cam.source)[0],
            "retain_days": str(cam.retain_days), "transport": cam.transport, "enabled": cam.enabled,
            "has_credentials": cam.has_credentials}


def add_camera(app, actor: Actor, camera_id: str, edit: CameraEdit) -> list[str]:
    """A new camera of this node; returns the keys set (audited as ``camera.add``)."""
    return _change(app, actor, "camera.add", camera_id, edit=edit, new=True)


def edit_camera(app, actor: Actor, camera_id: str, edit: CameraEdit) -> list[str]:
    """Change a camera of this node; returns the keys changed (audited as ``camera.edit``; nothing changed: no
    entry, no reload)."""
    return _change(app, actor, "camera.edit", camera_id, edit=edit, new=False)


def set_enabled(app, actor: Actor, camera_id: str, enabled: bool) -> list[str]:
    """Disable (the recorder seals and stops it at once; its footage keeps its retention) or enable again."""
    return _change(app, actor, "camera.enable" if enabled else "camera.disable", camera_id, enabled=enabled)


# ---------------------------------------------------------------- the change


def _change(app, actor: Actor, action: str, camera_id: str, *, edit: CameraEdit | None = None,
            new: bool = False, enabled: bool | None = None) -> list[str]:
    path = Path(app.config_path)
    with _edit_lock(app.config.data_dir):
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
        cams = doc.setdefault("cameras", tomlkit.aot())
        ids = [str(t.get("id", "")) for t in cams]
        if new:
            if camera_id in ids:
                raise CameraFormError(f"camera id {camera_id!r} is used already; choose another", "id",
                                      Kind.CONFLICT, key=N_("camera_form.err.id_used"), params={"id": camera_id})
            inline = not isinstance(cams, AoT)  # cameras = [{...}, ...] as tomli-w writes it, or [[cameras]]
            cams.append(tomlkit.inline_table() if inline else tomlkit.table())
            ids.append(camera_id)
            cams[-1]["id"] = camera_id
        elif camera_id not in ids:
            raise DomainError(Kind.NOT_FOUND, f"this node's configuration has no camera {camera_id!r} (a camera "
                                              "of another node is edited on that node)",
                                              key=N_("camera_form.err.other_node"), params={"id": camera_id})
        position = ids.index(camera_id)
        table = cams[position]
        before = dict(table)
        if edit is not None:
            _apply_edit(table, edit)
        if enabled is not None:
            _set(table, "enabled", enabled, default=True)
        changed = _describe(before, dict(table))
        if not changed:
            return []
        candidate = _checked_candidate(path, tomlkit.dumps(doc), position)
        try:
            with audited(app.engine, app.clock, actor, action, obj=f"camera:{camera_id}") as (_s, entry):
                entry.detail = json.dumps({"camera": camera_id, "changed": changed}, sort_keys=True)
                os.replace(candidate, path)
                _fsync_dir(path.parent)
        finally:
            candidate.unlink(missing_ok=True)
        _apply(app)
        return sorted(changed)


def _apply_edit(table, edit: CameraEdit) -> None:
    old_source = str(table.get("source", ""))
    _, old_user, old_password = split_credentials(old_source)
    typed, typed_user, typed_password = split_credentials(edit.source.strip())
    user = edit.username.strip() or typed_user or (None if edit.clear_credentials else old_user)
    password = edit.password or typed_password or (None if edit.clear_credentials or
                                                   (edit.username.strip() and edit.username.strip() != old_user)
                                                   else old_password)
    if password and not user:
        raise CameraFormError("a password needs a user name: type both (neither is shown again)", "username",
                              key=N_("camera_form.err.password_needs_user"))
    _set(table, "name", edit.name.strip() or None)
    _set(table, "place", edit.place.strip(), default="")
    _set(table, "source", with_credentials(typed, user, password) if typed else "")
    days = edit.retain_days.strip()
    _set(table, "retain_days", int(days) if days.isdigit() and len(days) < 10 else days)
    _set(table, "transport", edit.transport, default="tcp")
    _set(table, "enabled", edit.enabled, default=True)


def _set(table, key: str, value, *, default=None) -> None:
    """Set a key; a value equal to its default is removed unless the file had it (the file stays tidy)."""
    if value is None or (value == default and key not in table):
        table.pop(key, None)
    elif table.get(key) != value:
        table[key] = value


def _describe(before: dict, after: dict) -> dict:
    """What changed, as the audit trail records it: new values, but of the source only its address without
    credentials and whether the credentials were set, changed or removed."""
    out = {}
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if key == "source":
            (old_url, old_user, old_pw), (new_url, new_user, new_pw) = (split_credentials(str(old or "")),
                                                                        split_credentials(str(new or "")))
            if old_url != new_url:
                out["source"] = new_url
            if (old_user, old_pw) != (new_user, new_pw):
                out["credentials"] = ("set" if old_user is None else "removed" if new_user is None else "changed")
        else:
            out[key] = _plain(new)
    return out


def _plain(value):
    if value is None:
        return None
    unwrapped = value.unwrap() if hasattr(value, "unwrap") else value
    return unwrapped if isinstance(unwrapped, (bool, int, str)) else str(unwrapped)


def _checked_candidate(path: Path, text: str, position: int) -> Path:
    """Write ``text`` beside ``path`` and check it as ``vms config check`` does; the checked file's path."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if "@" in text:  # a source may now carry credentials: readable by the owner only
        mode &= 0o700
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    candidate = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(candidate, mode)
        load_config(candidate)
    except ConfigError as exc:
        candidate.unlink(missing_ok=True)
        message = str(exc).replace(str(candidate), str(path))
        raise CameraFormError(message, _field_of(exc.key, position)) from None
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    return candidate


def _field_of(key: str, position: int) -> str:
    m = _KEY.match(key or "")
    if not m or int(m.group(1)) != position:
        return ""
    return _FIELD_OF_KEY.get(m.group(2) or "", "")


def _apply(app) -> None:
    if app.reload_config is not None:
        app.reload_config()  # vms serve: the SIGHUP path; the recorder follows at once
        return
    app.config = load_config(app.config_path)
    app.sync_cameras()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _edit_lock(data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "config-edit.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
