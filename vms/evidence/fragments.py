"""Fragments for the continuous player: the part of a camera's footage around the play head, as a
self-contained fragmented MP4 that a browser appends to a Media Source Extensions buffer.

A fragment starts on a keyframe and ends just before a keyframe, so fragments asked for one after
the other (each at the ``next_us`` of the one before) join without a frame missing or repeated:

* it starts at the keyframe shown at or before ``at_us`` (the reader's rule) unless that keyframe is
  shown before the ticket's window, or ``at_us`` falls in a recording gap: then at the first keyframe
  shown at or after the window's start / after the gap.  So, as in :mod:`vms.evidence.playback`,
  no picture from before the window is sent (the frames between the window's start and its first
  keyframe are in an export, re-encoded, not in playback);
* it ends before the first keyframe shown ``span_us`` or more after its own first frame, before a
  recording gap (a segment starting more than :data:`GAP_US` after the last packet), before a change
  of stream (a new resolution or codec), and before the first packet shown at or after the window's
  end.  ``next_us`` is the shown time of the keyframe it stopped at (``None`` when the window's
  footage ends there): where the next fragment starts, later than ``end_us`` across a gap.

Timestamps are those of :class:`vms.evidence.playback.Clip`: media time *t* of the fragment is
``base_us`` (the wall-clock time of its first packet, in decode order) plus *t*; a player placing
fragments on one timeline sets its offset to ``base_us`` minus its own origin.

Memory stays bounded as for playback: the MP4 is encrypted as it is written (a
:class:`vms.evidence.playback.ClipBody` whose key exists only in memory) and streamed chunk by chunk.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.format import blobs
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence import playback
from vms.evidence.remux import StreamingSink, shown_us
from vms.recording.bitstream import parameter_sets_annexb, split_annexb

GAP_US = 1_000_000  # a segment starting this long after the last packet starts after a recording gap
MIN_SPAN_S, MAX_SPAN_S = 1, 30  # how much footage one fragment may ask for


@dataclass(frozen=True)
class Fragment:
    body: playback.ClipBody
    camera_id: str
    base_us: int  # wall-clock time of media time 0 (the first packet's decode time)
    first_us: int  # the first frame shown
    end_us: int  # when the last frame shown stops being shown (its time plus its duration)
    next_us: int | None  # where the next fragment starts (None: no more footage in the window)
    packets: int
    codecs: str  # RFC 6381 codec string for MediaSource.isTypeSupported / addSourceBuffer
    fps: float
    content_type: str = "video/mp4"

    @property
    def size(self) -> int:
        return self.body.size


def build(app, camera_id: str, at_us: int, span_s: float, *, window: tuple[int, int]) -> Fragment:
    """The fragment of ``camera_id`` at ``at_us`` (see the module docstring); NOT_FOUND when the window holds
    no footage at or after ``at_us``.  Access is the caller's to check."""
    floor_us, ceiling_us = window
    span_us = int(max(MIN_SPAN_S, min(MAX_SPAN_S, span_s)) * 1_000_000)
    key = os.urandom(blobs.KEY_BYTES)
    writer = blobs.BlobWriter(playback._clip_dir(app) / f"{secrets.token_hex(16)}.clip", key,
                              purpose="playback-clip", chunk_bytes=playback.CLIP_CHUNK_BYTES)
    sink = StreamingSink(writer.write, window_bytes=playback.SINK_WINDOW_BYTES)
    muxer = playback._Muxer(sink)
    first = last_shown = next_us = None
    stream = None
    try:
        with Session(app.engine) as s:
            for stream_of, p, seg_first in playback._packets(app, s, camera_id, at_us, ceiling_us):
                shown = shown_us(p, stream_of.time_base)
                if muxer.clip is None:
                    if not p.keyframe or shown < floor_us:
                        continue  # a fragment starts on a keyframe shown inside the window
                    if shown >= ceiling_us:
                        break
                    first, stream = shown, stream_of
                elif p.keyframe and (shown - first >= span_us or (seg_first and p.wall_us - muxer.last_us > GAP_US)):
                    next_us = shown if shown < ceiling_us else None
                    break
                elif shown >= ceiling_us:
                    break  # the window ends: nothing shown at or after its end
                if not muxer.add(stream_of, p, seg_first):
                    next_us = shown  # the stream changed here: the next fragment starts with it
                    break
                last_shown = shown if last_shown is None else max(last_shown, shown)
        if muxer.clip is None:
            raise DomainError(Kind.NOT_FOUND, f"camera {camera_id} has no footage in the ticket's window at or "
                                              "after the requested time",
                                              key=N_("player.err.no_footage_after"), params={"camera": camera_id})
        muxer.close()
        sink.finish()
        writer.close()
    except BaseException:
        muxer.abort()
        writer.abort()
        raise
    frame_us = round(1_000_000 / float(stream.fps))
    body = playback.ClipBody(writer.path, key, writer.tell())
    return Fragment(body, camera_id, muxer.first_us, first, min(last_shown + frame_us, ceiling_us), next_us,
                    muxer.count, codec_string(stream), float(stream.fps))


def codec_string(stream) -> str:
    """The RFC 6381 ``codecs`` parameter of a stream (``avc1.PPCCLL``, ``hvc1.…``), from its SPS."""
    sets = split_annexb(parameter_sets_annexb(stream.codec, stream.extradata))
    if stream.codec == "h264":
        sps = next((n for n in sets if n and n[0] & 0x1F == 7 and len(n) >= 4), None)
        return f"avc1.{sps[1]:02X}{sps[2]:02X}{sps[3]:02X}" if sps else "avc1.640028"
    sps = next((n for n in sets if len(n) >= 15 and (n[0] >> 1) & 0x3F == 33), None)
    if sps is None:
        return "hvc1.1.6.L120.B0"
    ptl = sps[3:]  # after the 2-byte NAL header and the vps id / sub-layers byte
    space, tier, profile = ptl[0] >> 6, (ptl[0] >> 5) & 1, ptl[0] & 0x1F
    compat = int.from_bytes(ptl[1:5], "big")
    compat_rev = int(f"{compat:032b}"[::-1], 2)
    constraints = ptl[5:11].rstrip(b"\x00") or b"\x00"
    prefix = "ABC"[space - 1] if space else ""
    return (f"hvc1.{prefix}{profile}.{compat_rev:X}.{'H' if tier else 'L'}{ptl[11]}."
            + ".".join(f"{b:X}" for b in constraints))
