"""Cameras added, changed, disabled or removed while the recorder runs (a config reload; no restart).

:func:`apply_cameras` (``Recorder.apply``) makes a running recorder record exactly the enabled cameras of a
new configuration:

* a camera no longer enabled (disabled or removed) is sealed under its lock and stopped: its thread's stop
  event is set (it stores no packet after that; a capture blocked in the network ends within the read
  timeout, the thread is a daemon), sealed segments waiting for the index are indexed, its state is saved
  as offline with the reason, and a gap is opened from the end of its footage;
* a camera whose capture settings (:data:`CAPTURE_KEYS`) changed is stopped the same way and started again
  as a new camera thread on the new settings; its camera clock starts after its newest segment, so old and
  new footage never overlap, and the gap between them says "camera settings changed";
* a new camera starts (after ``Recorder.start``; before it, ``start`` starts it with the others);
* any other change (name, place, retention, quota) is taken over by the running camera as it is.

One apply at a time (``Recorder._apply_lock``); ``Recorder.cameras`` is replaced whole, never changed in
place, so the housekeeping thread and ``stop`` iterate a consistent dict.
"""

from __future__ import annotations

import logging

from storage.sql import index

log = logging.getLogger("vms.recording.recorder")  # the recorder's messages, one logger

#: a camera's settings its capture is opened with: a change restarts the camera
CAPTURE_KEYS = ("source", "transport", "loop", "segment_seconds")


def apply_cameras(recorder, cameras) -> list[str]:
    """Returns what was done: ``"started ID"``, ``"restarted ID"``, ``"stopped ID"`` per camera touched."""
    done = []
    with recorder._apply_lock:
        wanted = {c.id: c for c in cameras if c.enabled}
        kept = {}
        for cam_id, rec in recorder.cameras.items():
            new = wanted.get(cam_id)
            if new is not None and all(getattr(new, k) == getattr(rec.cam, k) for k in CAPTURE_KEYS):
                rec.cam = new
                kept[cam_id] = rec
                continue
            stop_camera(recorder, rec, "camera disabled" if new is None else "camera settings changed")
            done.append(f"{'stopped' if new is None else 'restarted'} {cam_id}")
        for cam_id, cam in wanted.items():
            if cam_id in kept:
                continue
            kept[cam_id] = rec = recorder._camera(cam)
            if recorder.started:
                rec.note_restart_gap("camera settings changed")
                rec.thread.start()
            if f"restarted {cam_id}" not in done:
                done.append(f"started {cam_id}")
        recorder.cameras = kept
    for what in done:
        log.info("camera %s: %s after a config change", what.split(" ", 1)[1], what.split(" ", 1)[0])
    return done


def stop_camera(recorder, rec, reason: str) -> None:
    """Seal and stop one camera; its state says offline with ``reason`` and a gap starts at its footage's end."""
    rec._stop.set()
    rec.seal()
    rec.index_pending()
    st = rec.stats
    st.last_error = reason
    if st.gap_since_us is None:
        st.gap_since_us = start = rec._last_end_us or rec.camera_clock.now_us()
        rec._db(lambda s: index.open_gap(s, rec.cam.id, start, reason))
    rec._db(lambda s: rec.save_state(s, recorder.clock.now_us()))
