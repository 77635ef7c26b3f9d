"""Footage for playback tests: a real H.264 clip read as packets (vms.recording.capture)
and written as encrypted segments through the appliance's store."""

from __future__ import annotations

from dataclasses import replace

from storage.format.packets import Packet
from vms.recording.capture import Capture


def clip_packets(path, start_us: int) -> tuple[object, list[Packet]]:
    """(StreamInfo, packets) of a clip file, wall-clock stamped from ``start_us``."""
    cap = Capture(str(path), realtime=False, wall_clock_us=lambda: start_us)
    with cap:
        packets = list(cap)
        return cap.info, packets


def write_segment(app, camera_id: str, info, packets: list[Packet]) -> int:
    """One sealed, indexed segment of ``packets`` (the first must be a keyframe)."""
    assert packets[0].keyframe
    writer = app.store.open_writer(camera_id, info, packets[0].wall_us, now_us=app.clock.now_us())
    for p in packets:
        writer.write(p)
    return app.store.index_sealed(writer.close())


def shifted(packets: list[Packet], by_us: int, by_ticks: int) -> list[Packet]:
    return [replace(p, wall_us=p.wall_us + by_us, pts=p.pts + by_ticks, dts=p.dts + by_ticks) for p in packets]


def record(app, camera_id: str, clip_path, start_us: int) -> dict:
    """Three segments: the clip split in two at its middle keyframe, then (after a
    6 s gap) its first half again.  Returns what was written."""
    info, packets = clip_packets(clip_path, start_us)
    keys = [i for i, p in enumerate(packets) if p.keyframe]
    mid = keys[len(keys) // 2]
    write_segment(app, camera_id, info, packets[:mid])
    write_segment(app, camera_id, info, packets[mid:])
    clip_us = packets[-1].wall_us - packets[0].wall_us + 1_000_000 // int(info.fps)
    gap_us = clip_us + 6_000_000
    again = shifted(packets[:mid], gap_us, round(gap_us / 1_000_000 / info.time_base))
    write_segment(app, camera_id, info, again)
    return {"info": info, "packets": len(packets) + mid, "first_us": start_us, "clip_us": clip_us,
            "last_us": again[-1].wall_us, "gap": (start_us + clip_us, again[0].wall_us)}
