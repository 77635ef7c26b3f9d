"""A clip for finding tests: a still scene with an object moving across it in between (ffmpeg lavfi).

:func:`make_moving_clip` makes ``still_s`` seconds of SMPTE bars with light sensor-like noise, then
``move_s`` seconds in which a textured 80x80 square (lavfi ``testsrc``) crosses the picture left to right
at a fixed height, then ``still_s`` seconds of the still scene again.  :func:`object_box` says where the
square is at a time (fractions of the picture), so a test can draw a region the object crosses (and one it
never crosses) and know when it enters.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

WIDTH, HEIGHT, SIDE, TOP = 640, 360, 80, 120


def speed_px_s(move_s: float) -> float:
    return (WIDTH + SIDE) / move_s


def object_box(t_s: float, still_s: float, move_s: float) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) of the square at ``t_s`` seconds into the clip, as fractions; None while off-picture."""
    if not still_s <= t_s < still_s + move_s:
        return None
    x = (t_s - still_s) * speed_px_s(move_s) - SIDE
    return x / WIDTH, TOP / HEIGHT, SIDE / WIDTH, SIDE / HEIGHT


def enters_at(region_x: float, still_s: float, move_s: float) -> float:
    """Seconds into the clip when the square's right edge reaches ``region_x`` (a fraction of the width)."""
    return still_s + (region_x * WIDTH) / speed_px_s(move_s)


def make_moving_clip(path: Path, *, still_s: float = 20, move_s: float = 10, fps: int = 15, gop: int = 15,
                     bframes: int = 0) -> Path:
    """Encode the clip with Debian's ffmpeg (libx264, a keyframe every ``gop`` frames, ``bframes``)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg (Debian package ffmpeg) is not installed")
    total = 2 * still_s + move_s
    speed = speed_px_s(move_s)
    x = f"if(between(t,{still_s},{still_s + move_s}),(t-{still_s})*{speed:.4f}-{SIDE},-{2 * SIDE})"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg, "-v", "error", "-y",
           "-f", "lavfi", "-i", f"smptebars=s={WIDTH}x{HEIGHT}:r={fps}:d={total}",
           "-f", "lavfi", "-i", f"testsrc=s={SIDE}x{SIDE}:r={fps}:d={total}",
           "-filter_complex", f"[0][1]overlay=x='{x}':y={TOP},noise=alls=3:allf=t",
           "-c:v", "libx264", "-preset", "veryfast", "-g", str(gop), "-keyint_min", str(gop),
           "-sc_threshold", "0", "-bf", str(bframes), "-pix_fmt", "yuv420p", "-crf", "23", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def store_with_activity(app, camera_id: str, clip_path: Path, start_us: int, *, segment_s: float = 10.0) -> list[int]:
    """Write a clip file into the store as the recorder does, activity records included (the packets come
    from OpenCV's raw capture of the file; for API tests that need no RTSP server).  Returns segment ids."""
    from testkit.footage import read_clip
    from vms.recording.activity import ActivityMeter

    info, packets = read_clip(clip_path, start_us)
    meter, writer, ids = ActivityMeter(), None, []
    for p in packets:
        if writer is None or (p.keyframe and p.wall_us - writer.start_us >= segment_s * 1e6):
            if writer is not None:
                ids.append(app.store.index_sealed(writer.close(meter.finish())))
            writer = app.store.open_writer(camera_id, info, p.wall_us, now_us=app.clock.now_us())
            meter.start(p.wall_us)
        writer.write(p)
        meter.add(p.wall_us, len(p.data), p.keyframe)
    ids.append(app.store.index_sealed(writer.close(meter.finish())))
    return ids
