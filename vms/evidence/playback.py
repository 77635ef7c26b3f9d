"""Gated footage: listing what was recorded inside a ticket, and playback as fragmented MP4.

Playback decrypts the packets of one camera's span and muxes them with PyAV
into a fragmented MP4 (``frag_keyframe+empty_moov+default_base_moof``) that is
encrypted as it is written (:class:`ClipBody`: an AES-GCM blob under
``DATA_DIR/playback/`` whose key exists only in this process's memory, so no
clear footage touches disk, a dropped clip is crypto-shredded, and a server's
memory per viewer stays bounded by a chunk or two, whatever the span's length).  The bytes start at the keyframe
at or before the span's start (a player needs one) unless that keyframe is
shown before the ticket's window: then at the first keyframe inside the window
(the frames in between are in an export, re-encoded, but not in playback).  They
end before the first packet shown at or after the span's end (packets after it
in decode order may reference it).  So no picture from outside the window is sent.

Timestamps: within a segment pts/dts are the camera's own (time base as
recorded); each segment is placed by the wall-clock time of its first packet,
so a recording gap is a gap in the media timeline, and dts stays strictly
increasing.  MP4 time *t* is the first packet's wall-clock time plus *t*.

Every use is checked by :mod:`vms.access.policy`; each play is audited
(``footage.play``: who, ticket, camera, span, bytes); refusals are audited too.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from storage.format import blobs
from storage.format.packets import Packet, StreamInfo
from storage.format.segment import SegmentError
from storage.keys.keyring import KeyShredded
from storage.sql import index
from storage.sql import tickets as ticket_store
from vms.access import policy as access
from vms.access import tickets
from vms.access.audit import audited
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso
from vms.evidence.remux import CopyClip, StreamingSink, shown_us

CLIP_DIR = "playback"
CLIP_CHUNK_BYTES = 256 << 10  # what a range request decrypts at a time
SINK_WINDOW_BYTES = 1 << 20  # the muxer's seeks back stay inside this
_cleaned: set[Path] = set()
_cleaned_lock = threading.Lock()
MAX_SEGMENT_US = 3_600_000_000  # longest segment the index may hold (bounds the timeline scan)
JOIN_US = 2_000_000  # segments closer than this count as one recorded span


@dataclass(frozen=True)
class CameraFootage:
    camera_id: str
    recorded: list[tuple[int, int]]  # spans with footage, clipped to the window
    gaps: list[tuple[int, int | None, str]]  # gaps the recorder logged (end None: ongoing)
    missing: list[tuple[int, int]]  # parts of the window without footage


@dataclass(eq=False)
class ClipBody:
    """A muxed clip at rest, encrypted under a key held only here (never stored, never logged)."""

    path: Path
    key: bytes = field(repr=False)
    size: int = 0

    def chunks(self, first: int = 0, last: int | None = None) -> Iterator[bytes]:
        """Bytes ``first..last`` (inclusive; default: to the end), authenticated chunk by chunk; the file is
        open when this returns, so a clip dropped meanwhile still streams to the end."""
        key, last = self.key, self.size - 1 if last is None else last
        if not key:
            raise FileNotFoundError(f"{self.path.name}: discarded")
        if self.size == 0:
            return iter(())
        return blobs.read_blob_range(self.path, key, self.size, first, last)

    def discard(self) -> None:
        """Remove the file and forget the key: the clip is unreadable from now on."""
        self.path.unlink(missing_ok=True)
        self.key = b""


@dataclass(frozen=True)
class Clip:
    body: ClipBody
    camera_id: str
    first_us: int | None  # wall-clock time of the first packet
    last_us: int | None  # wall-clock time of the last packet
    packets: int
    content_type: str = "video/mp4"
    segment_ids: tuple[int, ...] = ()  # the segments it was built from (a cached clip lives only while they do)

    @property
    def size(self) -> int:
        return self.body.size

    @property
    def data(self) -> bytes:
        """The whole clip (tests and small spans; the API streams :meth:`ClipBody.chunks`)."""
        return b"".join(self.body.chunks())


def _scope(s: Session, ticket_id: int) -> access.TicketScope:
    t = ticket_store.ticket(s, ticket_id)
    if t is None:
        access.no_such_ticket(ticket_id).raise_()
    return tickets.scope_of(t, tuple(ticket_store.ticket_cameras(s, t.id)))


def _refuse(app, principal, action: str, ticket_id: int, obj: str, problem: access.Refusal) -> None:
    """Record the refusal (in its own transaction) and raise it (permission denied, whatever its kind)."""
    with audited(app.engine, app.clock, principal.actor, action, obj=obj, ticket_id=ticket_id):
        raise DomainError(Kind.FORBIDDEN, problem.message, key=problem.key, params=problem.params)


def _existing(s: Session, ticket_id: int, principal) -> access.TicketScope:
    """The ticket's scope; someone else's ticket "does not exist" (the other refusals are audited by the caller)."""
    scope = _scope(s, ticket_id)
    refusal = access.ticket_refusal(principal.role, principal.user_id, access.Action.TICKET_READ, scope)
    if refusal is not None and refusal.kind == Kind.NOT_FOUND:
        refusal.raise_()
    return scope


# ---------------------------------------------------------------- listing


def merge_spans(refs, start_us: int, end_us: int) -> list[tuple[int, int]]:
    spans: list[list[int]] = []
    for r in refs:
        a, b = max(r.start_us, start_us), min(r.end_us, end_us)
        if b <= a:
            continue
        if spans and a - spans[-1][1] <= JOIN_US:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    return [(a, b) for a, b in spans]


def complement(spans: list[tuple[int, int]], start_us: int, end_us: int) -> list[tuple[int, int]]:
    out, at = [], start_us
    for a, b in spans:
        if a > at:
            out.append((at, a))
        at = max(at, b)
    if at < end_us:
        out.append((at, end_us))
    return out


def footage(app, principal, ticket_id: int) -> list[CameraFootage]:
    """Recorded spans, logged gaps and missing parts per camera inside the ticket's window."""
    tickets.expire_due(app)
    now = app.clock.now_us()
    with Session(app.engine) as s:
        scope = _existing(s, ticket_id, principal)
        problem = access.footage_refusal(principal.role, principal.user_id, scope, now_us=now)
        if not problem:
            out = []
            end = min(scope.end_us, max(now, scope.start_us))
            for cam in scope.cameras:
                refs = index.timeline(s, cam, scope.start_us, scope.end_us, max_segment_us=MAX_SEGMENT_US)
                spans = merge_spans(refs, scope.start_us, scope.end_us)
                gaps = [(max(g.start_us, scope.start_us), None if g.end_us is None else min(g.end_us, scope.end_us), g.reason)
                        for g in index.gaps(s, cam, scope.start_us, scope.end_us)]
                out.append(CameraFootage(cam, spans, gaps, complement(spans, scope.start_us, end)))
            return out
    _refuse(app, principal, "footage.list", ticket_id, f"ticket:{ticket_id}", problem)


# ---------------------------------------------------------------- playback


def authorize_footage(app, principal, ticket_id: int) -> access.TicketScope:
    """Raise FORBIDDEN (audited as a refused play) unless the principal may see the ticket's footage now."""
    tickets.expire_due(app)
    with Session(app.engine) as s:
        scope = _existing(s, ticket_id, principal)
    problem = access.footage_refusal(principal.role, principal.user_id, scope, now_us=app.clock.now_us())
    if problem:
        _refuse(app, principal, "footage.play", ticket_id, f"ticket:{ticket_id}", problem)
    return scope


def authorize_play(app, principal, ticket_id: int, camera_id: str, start_us: int,
                   end_us: int) -> access.TicketScope:
    """Raise FORBIDDEN (audited) unless the principal may play this span now; the ticket's scope."""
    tickets.expire_due(app)
    max_us = app.config.api.playback_max_s * 1_000_000
    with Session(app.engine) as s:
        scope = _existing(s, ticket_id, principal)
    problem = access.play_refusal(principal.role, principal.user_id, scope, camera_id, start_us, end_us,
                                  now_us=app.clock.now_us())
    if problem:
        _refuse(app, principal, "footage.play", ticket_id, f"camera:{camera_id[:64]}", problem)
    if end_us - start_us > max_us:
        raise DomainError(Kind.INVALID, f"span: at most {app.config.api.playback_max_s} s per request; "
                                        "ask for consecutive spans",
                                        key=N_("player.err.span"), params={"max": app.config.api.playback_max_s})
    return scope


def play(app, principal, ticket_id: int, camera_id: str, start_us: int, end_us: int) -> Clip:
    """Check, mux and audit one play of ``camera_id`` in [start_us, end_us)."""
    scope = authorize_play(app, principal, ticket_id, camera_id, start_us, end_us)
    with audited(app.engine, app.clock, principal.actor, "footage.play", obj=f"camera:{camera_id}",
                 ticket_id=ticket_id) as (_, entry):
        entry.detail = f"span={iso(start_us)}..{iso(end_us)}"
        clip = mux_span(app, camera_id, start_us, end_us, window_start_us=scope.start_us)
        first = iso(clip.first_us) if clip.first_us is not None else "-"
        last = iso(clip.last_us) if clip.last_us is not None else "-"
        entry.detail += f" packets={clip.packets} bytes={clip.size} first={first} last={last}"
    return clip


def _packets(app, s: Session, camera_id: str, start_us: int, end_us: int,
             used: list[int] | None = None) -> Iterator[tuple[StreamInfo, Packet, bool]]:
    """(stream, packet, first-of-its-segment) over the span, decrypted in memory; the ids of the
    segments read are appended to ``used``."""
    for ref in index.timeline(s, camera_id, start_us, end_us, max_segment_us=MAX_SEGMENT_US):
        if ref.status != "sealed":
            continue
        try:
            reader = app.store.reader(s, ref)
            first = True
            for p in reader.packets(start_us, end_us):
                if first and used is not None:
                    used.append(ref.id)
                yield reader.header.stream, p, first
                first = False
        except FileNotFoundError:
            continue  # deleted since the index was read, or on another node
        except KeyShredded:
            continue  # its hour or day key was shredded (retention ended) and its row not yet removed: the footage is gone
        except SegmentError as exc:
            raise DomainError(Kind.PRECONDITION, f"segment of camera {camera_id} cannot be read: {exc.reason}",
                              key=N_("player.err.unreadable"), params={"camera": camera_id}) from None


def mux_span(app, camera_id: str, start_us: int, end_us: int, *, window_start_us: int | None = None) -> Clip:
    """Fragmented MP4 of the camera's frames shown in [start_us, end_us), encrypted as it is built (a
    :class:`ClipBody`); nothing shown before ``window_start_us`` (the ticket's window; default ``start_us``)."""
    floor_us = start_us if window_start_us is None else window_start_us
    key = os.urandom(blobs.KEY_BYTES)
    writer = blobs.BlobWriter(_clip_dir(app) / f"{secrets.token_hex(16)}.clip", key, purpose="playback-clip",
                              chunk_bytes=CLIP_CHUNK_BYTES)
    sink = StreamingSink(writer.write, window_bytes=SINK_WINDOW_BYTES)
    muxer = _Muxer(sink)
    used: list[int] = []
    with Session(app.engine) as s:
        try:
            for stream, p, seg_first in _packets(app, s, camera_id, start_us, end_us, used):
                shown = shown_us(p, stream.time_base)
                if shown >= end_us:
                    break
                if muxer.clip is None and (not p.keyframe or shown < floor_us):
                    continue  # a clip starts on a keyframe shown inside the window
                if not muxer.add(stream, p, seg_first):
                    break  # the stream changed (new resolution or codec): the clip ends here
            if muxer.clip is None:
                raise DomainError(Kind.NOT_FOUND, f"camera {camera_id} has no footage in the requested span",
                                  key=N_("player.err.no_footage"), params={"camera": camera_id})
            muxer.close()
            sink.finish()
            writer.close()
        except BaseException:
            muxer.abort()
            writer.abort()
            raise
    body = ClipBody(writer.path, key, writer.tell())
    return Clip(body, camera_id, muxer.first_us, muxer.last_us, muxer.count, segment_ids=tuple(used))


def _clip_dir(app) -> Path:
    """``DATA_DIR/playback`` (0700); clips left by an earlier process are removed the first time (their
    keys died with it, so they were unreadable anyway)."""
    path = Path(app.config.data_dir) / CLIP_DIR
    with _cleaned_lock:
        if path not in _cleaned:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            for old in path.glob("*.clip*"):
                old.unlink(missing_ok=True)
            _cleaned.add(path)
    return path


def still_readable(app, clip: Clip) -> bool:
    """Whether every segment a clip was built from is still sealed and decryptable: a clip kept in memory
    must not outlive its footage's deletion or crypto-shred (whichever process did it)."""
    with Session(app.engine) as s:
        return index.readable_segments(s, clip.segment_ids) == set(clip.segment_ids)


class _Muxer:
    """Feeds packets to :class:`vms.evidence.remux.CopyClip`, one packet behind (its duration
    is the next packet's dts minus its own), re-timing segments on the wall clock."""

    def __init__(self, sink: StreamingSink):
        self.sink = sink
        self.clip: CopyClip | None = None
        self.stream: StreamInfo | None = None
        self.pending: Packet | None = None
        self.first_us = self.last_us = None
        self.count = self.offset = 0

    def add(self, stream: StreamInfo, p: Packet, seg_first: bool) -> bool:
        if self.clip is None:
            self.stream, self.first_us = stream, p.wall_us
            self.clip = CopyClip(self.sink, stream, creation_us=p.wall_us)
            seg_first = True  # the clip's first packet places the timeline, wherever it is in its segment
        elif stream != self.stream:
            return False
        if seg_first:  # place the segment on the wall-clock timeline
            self.offset = round((p.wall_us - self.first_us) / 1_000_000 / stream.time_base) - p.dts
        dts = p.dts + self.offset
        if self.pending is not None and dts <= self.pending.dts:
            self.offset += self.pending.dts + 1 - dts
            dts = self.pending.dts + 1
        q = Packet(p.data, p.wall_us, p.pts + self.offset, dts, p.keyframe, p.duration)
        if self.pending is not None:
            self.clip.add(self.pending, q.dts - self.pending.dts)
        self.pending, self.last_us, self.count = q, p.wall_us, self.count + 1
        return True

    def close(self) -> None:
        st = self.stream
        self.clip.add(self.pending, self.pending.duration or max(1, round(1 / (st.fps * st.time_base))))
        self.clip.close()

    def abort(self) -> None:
        if self.clip is not None:
            self.clip.abort()
