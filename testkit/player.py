"""Long footage for player tests and benchmarks: packets recorded once (e.g. from the RTSP test server)
repeated back to back to fill a window of any length, as the recorder would have stored them.

:func:`seed_window` writes copies of ``packets`` one after the other from ``start_us`` until ``end_us``,
each copy shifted on the wall clock and in pts/dts, into segments of about ``segment_s`` seconds that start
on keyframes, with the activity records the recorder seals (its own :class:`ActivityMeter` over the same
packets).  Returns the wall-clock length of one copy.
"""

from __future__ import annotations

from storage.format.packets import Packet, StreamInfo
from vms.recording.activity import ActivityMeter


def seed_window(app, camera_id: str, stream: StreamInfo, packets: list[Packet], start_us: int, end_us: int, *,
                segment_s: float = 10.0) -> int:
    frame_us = round(1_000_000 / float(stream.fps))
    copy_us = packets[-1].wall_us - packets[0].wall_us + frame_us
    copy_ticks = round(copy_us / 1_000_000 / stream.time_base)
    meter, writer, seg_start = ActivityMeter(), None, 0
    k = 0
    while start_us + k * copy_us < end_us:
        shift_us = start_us + k * copy_us - packets[0].wall_us
        for p in packets:
            q = Packet(p.data, p.wall_us + shift_us, p.pts + k * copy_ticks, p.dts + k * copy_ticks, p.keyframe,
                       p.duration)
            if q.wall_us >= end_us and q.keyframe:
                break
            if writer is None or (q.keyframe and q.wall_us - seg_start >= segment_s * 1e6):
                if writer is not None:
                    app.store.index_sealed(writer.close(meter.finish()))
                writer = app.store.open_writer(camera_id, stream, q.wall_us, now_us=q.wall_us)
                seg_start = q.wall_us
                meter.start(q.wall_us)
            writer.write(q)
            meter.add(q.wall_us, len(q.data), q.keyframe)
        k += 1
    if writer is not None:
        app.store.index_sealed(writer.close(meter.finish()))
    return copy_us
