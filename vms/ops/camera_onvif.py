"""The camera form's two ONVIF helpers, as audited use cases of the administrator (vms/ops/onvif.py speaks
the protocol; docs/design/cameras.md, "ONVIF").

* :func:`find_cameras`: one WS-Discovery probe; audited as ``camera.onvif_find`` with the address searched
  and how many devices answered;
* :func:`fetch_stream_address`: the device's main RTSP address, for the form's source field; audited as
  ``camera.onvif_stream`` with the device address, the profile and the address found, and whether a user name
  was given (``"login": true``), never the user name or the password.

A failure is audited too (``refused: <message>``, by :func:`vms.access.audit.audited`) and raised as the
:class:`vms.ops.onvif.OnvifError` it is.  Nothing is stored: the administrator saves the camera with the
form as always.
"""

from __future__ import annotations

import json

from vms.access.audit import Actor, audited
from vms.ops import onvif


def find_cameras(app, actor: Actor, target_text: str = "", *,
                 timeout_s: float = onvif.DISCOVERY_TIMEOUT_S) -> list[onvif.Device]:
    """The ONVIF devices answering a probe to ``target_text`` ("" -> the multicast group)."""
    with audited(app.engine, app.clock, actor, "camera.onvif_find") as (_s, entry):
        target = onvif.probe_target(target_text)
        entry.detail = json.dumps({"target": f"{target[0]}:{target[1]}"})
        devices = onvif.discover(target, timeout_s=timeout_s)
        entry.detail = json.dumps({"target": f"{target[0]}:{target[1]}", "found": len(devices)})
    return devices


def fetch_stream_address(app, actor: Actor, device_text: str, username: str = "", password: str = "", *,
                         timeout_s: float = onvif.REQUEST_TIMEOUT_S) -> onvif.StreamAddress:
    """Ask the device at ``device_text`` for its main stream's RTSP address (without credentials)."""
    username = (username or "").strip()
    with audited(app.engine, app.clock, actor, "camera.onvif_stream") as (_s, entry):
        entry.detail = json.dumps({"login": bool(username)})  # the address once checked (it has no credentials)
        url = onvif.device_url(device_text)
        entry.obj = f"onvif:{url}"
        entry.detail = json.dumps({"device": url, "login": bool(username)})
        found = onvif.stream_address(url, username, password or "", timeout_s=timeout_s)
        entry.detail = json.dumps({"device": url, "login": bool(username), "profile": found.profile,
                                   "source": found.uri})
    return found
