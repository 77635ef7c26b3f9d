"""The exporter: an approved ticket's footage as a signed evidence package, encrypted at rest.

Entry points (the access layer calls these after it has checked the ticket and
the caller's right to export; nothing here checks permissions):

* :func:`export_package` ``(app, request, progress) -> PackageInfo`` does the
  whole export in the calling thread.
* :func:`start_export` ``(runner, app, request) -> job_id`` runs it as a
  background job of a :class:`vms.evidence.jobs.JobRunner`; ``runner.status(job_id)``
  gives state, ``percent``, ``frames_done``/``frames_total``, ``error`` and, when
  it succeeded, ``result`` (the :class:`PackageInfo`).
* :func:`package_store` ``(app)`` -> :class:`vms.evidence.packages.PackageStore`: ``open``
  yields the ZIP's bytes for a download, ``delete``/``delete_expired`` remove it.

Per camera: the segments overlapping the window (``storage.sql.index.timeline``)
are decrypted one after the other.  No frame shown outside the window goes into
the package: when the window starts inside a group of pictures, the frames from
the window start to the next keyframe are decoded and re-encoded into a lead
clip of their own (:class:`vms.evidence.redact.RedactClip` without redaction),
and at the window end the first packet shown at or after the end stops the
camera (packets after it in decode order may reference it).  Other packets are
remuxed without re-encoding (:class:`vms.evidence.remux.CopyClip`) or, when
redaction is asked for, decoded, redacted and re-encoded.  A new clip starts wherever the footage has a
hole of :data:`HOLE_US` or more, the stream's parameters change or its
timestamps restart; every hole and every gap the recorder logged
(``storage.sql.index.gaps``) is listed in the manifest.

Contracts: the clear ZIP never touches disk (it streams into an encrypted
blob); a failure or cancellation at any point leaves no package and no partial
file (:class:`vms.evidence.packages.PendingPackage`).  Database sessions are short
(reading the segment list and each segment's key); none is held while footage
is processed.  Nothing is audited here: the caller records the export (and its
``PackageInfo``) in its own transaction.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Protocol

from sqlalchemy.orm import Session

from storage.format.packets import Packet, StreamInfo
from storage.keys.keyring import KeyShredded
from storage.sql import index
from storage.store import SegmentUnavailable
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.evidence import doorlog_csv
from vms.evidence import subject as subject_tracking
from vms.evidence.package import (
    PUBLIC_KEY,
    README,
    VERIFY_HTML,
    CameraRecord,
    ClipRecord,
    GapRecord,
    PackageZip,
    Signer,
    TicketFacts,
    Times,
    finish_package,
    manifest_document,
    readme_text,
    verify_html,
)
from vms.evidence.packages import PackageInfo, PackageStore, new_package_id
from vms.evidence.redact import FaceDetector, RedactClip, RedactionOptions
from vms.evidence.remux import CopyClip, StreamingSink, shown_us
from vms.recording.names import CameraNames

HOLE_US = 1_000_000  # footage missing for this long or longer is a gap
MAX_SEGMENT_US = 3600 * 1_000_000  # no segment is longer (bounds the timeline query)
MAX_WINDOW_US = 7 * 24 * 3600 * 1_000_000
PROGRESS_EVERY = 25  # packets between progress reports
EXPORTS_DIR = "exports"


class ProgressSink(Protocol):
    def update(self, frames_done: int, frames_total: int | None = None, message: str | None = None) -> None: ...


class _NoProgress:
    def update(self, frames_done: int, frames_total: int | None = None, message: str | None = None) -> None:
        pass


@dataclass(frozen=True)
class ExportRequest:
    """The facts of an approved export ticket, copied into the manifest verbatim."""

    ticket_id: str
    description: str
    legal_basis: str
    requester: str
    approver: str
    recipient: str
    cameras: tuple[str, ...]
    start_us: int
    end_us: int
    redaction: RedactionOptions = field(default_factory=RedactionOptions)
    expires_us: int | None = None  # when the package is to be deleted (the delivery's expiry)
    doorlog: doorlog_csv.DoorlogExtract | None = None  # the ticket's door log, as a signed CSV beside the clips

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if not self.cameras and self.doorlog is None:
            raise DomainError(Kind.INVALID, "an export needs at least one camera (or a door log)",
                              key=N_("export.err.nothing"))
        if len(set(self.cameras)) != len(self.cameras):
            raise DomainError(Kind.INVALID, "an export lists a camera more than once",
                              key=N_("export.err.camera_twice"))
        if not all(isinstance(t, int) for t in (self.start_us, self.end_us)) or self.start_us >= self.end_us:
            raise DomainError(Kind.INVALID, "the export window must have integer start_us < end_us (UTC µs)",
                              key=N_("export.err.window"))
        if self.end_us - self.start_us > MAX_WINDOW_US:
            raise DomainError(Kind.INVALID, "the export window is longer than 7 days; split the ticket",
                              key=N_("export.err.too_long"), params={"days": 7})
        if self.approver == self.requester:
            raise DomainError(Kind.INVALID, "requester and approver must be different people (four-eyes)",
                              key=N_("refused.four_eyes"))
        self.ticket  # validates the text fields  # noqa: B018

    @property
    def ticket(self) -> TicketFacts:
        return TicketFacts(self.ticket_id, self.description, self.legal_basis, self.requester, self.approver,
                           self.recipient)


def package_store(app) -> PackageStore:
    return PackageStore(app.config.data_dir / EXPORTS_DIR, app.keys.keyring)


def start_export(runner, app, request: ExportRequest) -> str:
    """Queue an export job; returns its id for ``runner.status``/``runner.cancel``."""
    return runner.submit("export", lambda progress: export_package(app, request, progress))


def export_package(app, request: ExportRequest, progress: ProgressSink | None = None) -> PackageInfo:
    progress = progress or _NoProgress()
    signer = Signer.load(app.config.signing_key_path)
    times = Times(app.config.timezone)
    plans = [_plan(app, cam, request) for cam in request.cameras]
    counter = _Counter(progress, sum(p.packets_estimate for p in plans))
    counter.report("started")
    store = package_store(app)
    package_id, created_us = new_package_id(), app.clock.now_us()
    with store.create(package_id) as pending:
        pkg = PackageZip(pending.writer, created_us=created_us)
        try:
            names = CameraNames(app.engine)  # manifest and README name each camera as people know it
            cameras = [dataclasses.replace(rec, name=names[rec.camera_id].name, place=names[rec.camera_id].place)
                       for rec in (_export_camera(app, plan, request, pkg, counter) for plan in plans)]
            readme = readme_text(
                package_id=package_id, ticket_id=request.ticket_id, times=times, created_us=created_us,
                fingerprint=signer.fingerprint, cameras=cameras, redaction_summary=request.redaction.summary(),
            )
            if request.doorlog is not None:
                pkg.add(doorlog_csv.PATH, doorlog_csv.csv_bytes(request.doorlog, times))
                readme += doorlog_csv.readme_lines(request.doorlog)
            pkg.add(README, readme)
            pkg.add(PUBLIC_KEY, signer.public_pem)
            pkg.add(VERIFY_HTML, verify_html())
            manifest = manifest_document(
                package_id=package_id, created_us=created_us, times=times, node_id=app.config.node_id,
                fingerprint=signer.fingerprint, ticket=request.ticket, window=(request.start_us, request.end_us),
                cameras=cameras, redaction=request.redaction.manifest(), files=list(pkg.files),
            )
            if request.doorlog is not None:
                manifest["doorlog"] = doorlog_csv.manifest_section(request.doorlog, times)
            manifest_bytes = finish_package(pkg, signer, manifest)
        except BaseException:
            pkg.abandon()
            raise
        counter.report("sealing the package")
        return pending.commit(
            ticket_id=request.ticket_id, cameras=request.cameras, created_us=created_us,
            expires_us=request.expires_us, filename=download_name(request.ticket_id, created_us),
            manifest_sha256=_sha256(manifest_bytes), key_fingerprint=signer.fingerprint,
            redacted=request.redaction.enabled,
        )


def download_name(ticket_id: str, created_us: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", ticket_id).strip("-")[:40] or "ticket"
    t = datetime.fromtimestamp(created_us // 1_000_000, UTC)
    return f"evidence-{safe}-{t:%Y%m%dT%H%M%SZ}.zip"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- planning


@dataclass(frozen=True)
class _Plan:
    camera_id: str
    segments: tuple[index.SegmentRef, ...]
    recorder_gaps: tuple[GapRecord, ...]

    @property
    def packets_estimate(self) -> int:
        return sum(s.packets for s in self.segments)


def _plan(app, camera_id: str, request: ExportRequest) -> _Plan:
    with Session(app.engine) as s:
        if camera_id not in {c.id for c in index.cameras(s)}:
            raise DomainError(Kind.NOT_FOUND, f"camera {camera_id!r} is unknown to this appliance",
                              key=N_("export.err.unknown_camera"), params={"camera": camera_id})
        refs = index.timeline(s, camera_id, request.start_us, request.end_us, max_segment_us=MAX_SEGMENT_US)
        gaps = index.gaps(s, camera_id, request.start_us, request.end_us)
        recorder_gaps = tuple(GapRecord(g.start_us, g.end_us, "recorder", g.reason) for g in gaps)
    return _Plan(camera_id, tuple(r for r in refs if r.status == "sealed"), recorder_gaps)


class _Counter:
    def __init__(self, progress: ProgressSink, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def tick(self) -> None:
        self.done += 1
        if self.done % PROGRESS_EVERY == 0:
            self.progress.update(self.done, max(self.total, self.done))

    def report(self, message: str) -> None:
        self.progress.update(self.done, max(self.total, self.done), message)


# ---------------------------------------------------------------- reading footage


def _segment_packets(app, ref: index.SegmentRef, start_us: int, end_us: int) -> Iterator[tuple[StreamInfo, Packet]]:
    """Decrypted packets of one segment inside the window (from the keyframe at or before ``start_us``)."""
    try:
        reader = app.store.detached_reader(ref)  # no session is held while footage is read
    except SegmentUnavailable as exc:
        raise DomainError(Kind.PRECONDITION, f"camera {ref.camera_id}: {exc}",
                          key=N_("export.err.unavailable"), params={"camera": ref.camera_id}) from None
    except FileNotFoundError:
        raise DomainError(
            Kind.PRECONDITION, f"segment {ref.path} of camera {ref.camera_id} is indexed but its file is missing",
            key=N_("export.err.missing"), params={"camera": ref.camera_id, "segment": str(ref.path)}
        ) from None
    except KeyShredded:
        raise DomainError(
            Kind.PRECONDITION, f"segment {ref.path} of camera {ref.camera_id}: its hour or day key was shredded (retention "
                               "ended), so the footage is gone; export a window without it",
                               key=N_("export.err.shredded"), params={"camera": ref.camera_id, "segment": str(ref.path)}
        ) from None
    for p in reader.packets(start_us, end_us):
        yield reader.header.stream, p


def _frame_ticks(stream: StreamInfo) -> int:
    return max(1, round(1 / (stream.fps * stream.time_base)))


def _ticks_us(ticks: int, tb: Fraction) -> int:
    return ticks * tb.numerator * 1_000_000 // tb.denominator


# ---------------------------------------------------------------- writing clips


LEAD_REASON = ("the window starts inside a group of pictures: the frames from the window start to the next "
               "keyframe were decoded and re-encoded (H.264), so that no picture from before the window is in "
               "the package; all other clips are copied bit for bit")


class _ClipBuilder:
    """One clip being written into a ZIP member; remembers what the manifest says about it.

    ``keep_from_us``: frames shown before it are left out (decoded, never encoded; only with
    re-encoding: redaction, or a ``lead`` clip, which ends at the next keyframe)."""

    def __init__(self, pkg: PackageZip, name: str, stream: StreamInfo, first: Packet, redaction: RedactionOptions,
                 *, keep_from_us: int | None = None, lead: bool = False, subject: dict | None = None):
        self.name, self.stream, self.lead = name, stream, lead
        self.reencoded = redaction.enabled or lead
        self.redacted = redaction.enabled
        self.member = pkg.open_member(name)
        self.sink = StreamingSink(self.member.write)
        tb = stream.time_base
        self.first_shown = shown_us(first, tb)
        if self.reencoded:
            keep = None
            if keep_from_us is not None and keep_from_us > self.first_shown:
                keep = first.pts + -(-(keep_from_us - self.first_shown) * tb.denominator // (1_000_000 * tb.numerator))
            self.clip = RedactClip(self.sink, stream, first.wall_us, redaction, keep_from_pts=keep, keep=subject)
        else:
            self.clip = CopyClip(self.sink, stream, creation_us=first.wall_us)
        self.first = first
        self.frames = self.keyframes = 0
        self.min_pts = self.max_pts = first.pts
        self._last_duration = _frame_ticks(stream)
        self._pending: Packet | None = None

    def add(self, p: Packet) -> None:
        # one packet of look-ahead: a packet's duration is the step to the next one
        if self._pending is not None:
            self._write(self._pending, p.dts - self._pending.dts)
        self._pending = p

    def _write(self, p: Packet, duration: int) -> None:
        self.clip.add(p, duration)
        self.frames += 1
        self.keyframes += p.keyframe
        self.min_pts, self.max_pts = min(self.min_pts, p.pts), max(self.max_pts, p.pts)

    def _at(self, pts: int) -> int:
        return self.first_shown + _ticks_us(pts - self.first.pts, self.stream.time_base)

    def end_us(self) -> int:
        return self._at(self.max_pts + self._last_duration)

    def close(self) -> ClipRecord | None:
        """Finish the clip; None when it holds no frame (all were before the window start)."""
        if self._pending is not None:
            self._last_duration = self._pending.duration or _frame_ticks(self.stream)
            self._write(self._pending, self._last_duration)
            self._pending = None
        self.clip.close()
        self.sink.finish()
        self.member.close()
        frames = self.frames
        if self.reencoded:
            if self.clip.frames_out + self.clip.frames_left_out != self.frames:
                raise DomainError(Kind.PRECONDITION, f"{self.name}: {self.frames} frames read but "
                                                     f"{self.clip.frames_out + self.clip.frames_left_out} decoded; "
                                                     "the stored footage is damaged",
                                                     key=N_("export.err.damaged"),
                                                     params={"name": self.name, "frames": self.frames, "decoded": self.clip.frames_out + self.clip.frames_left_out})
            if self.clip.first_pts is None:
                return None
            frames, self.min_pts, self.max_pts = self.clip.frames_out, self.clip.first_pts, self.clip.last_pts
        tb = self.stream.time_base
        return ClipRecord(
            file=self.name, codec="h264" if self.reencoded else self.stream.codec,
            width=self.stream.width, height=self.stream.height,
            fps=f"{self.stream.fps.numerator}/{self.stream.fps.denominator}",
            frames=frames, keyframes=self.clip.keyframes_out if self.reencoded else self.keyframes,
            first_frame_us=self._at(self.min_pts), last_frame_us=self._at(self.max_pts), end_us=self.end_us(),
            duration_s=float((self.max_pts - self.min_pts + self._last_duration) * tb), reencoded=self.reencoded,
            reencoded_reason=LEAD_REASON if self.lead else None,
            redaction_counts=self.clip.stats.counts() if self.redacted else None,
        )

    def abort(self) -> None:
        self.clip.abort()


def _clip_name(camera_id: str, n: int, first_us: int) -> str:
    t = datetime.fromtimestamp(first_us // 1_000_000, UTC)
    return f"clips/{camera_id}_{n:02d}_{t:%Y%m%dT%H%M%S}.{first_us % 1_000_000:06d}Z.mp4"


def _break_reason(prev_stream: StreamInfo, prev: Packet, stream: StreamInfo, p: Packet) -> str | None:
    if stream != prev_stream:
        return "stream parameters changed"
    if p.dts <= prev.dts:
        return "stream timestamps restarted"
    prev_end = prev.wall_us + _ticks_us(prev.duration or _frame_ticks(prev_stream), prev_stream.time_base)
    if p.wall_us - prev_end >= HOLE_US:
        return "hole"
    return None


def _export_camera(app, plan: _Plan, request: ExportRequest, pkg: PackageZip, counter: _Counter) -> CameraRecord:
    clips: list[ClipRecord] = []
    holes: list[GapRecord] = []
    builder: _ClipBuilder | None = None
    prev: tuple[StreamInfo, Packet] | None = None
    covered_to = request.start_us  # end of the footage written so far
    subject = None
    if request.redaction.subject is not None and request.redaction.subject.camera_id == plan.camera_id:
        counter.report(f"camera {plan.camera_id}: finding the data subject in every frame")
        frames = subject_tracking.decoded((sp for ref in plan.segments
                                           for sp in _segment_packets(app, ref, request.start_us, request.end_us)),
                                          request.start_us, request.end_us)
        subject = subject_tracking.track(frames, request.redaction.subject, FaceDetector(
            threshold=request.redaction.face_threshold, input_width=request.redaction.face_input_width))

    def finish() -> None:
        nonlocal builder, covered_to
        record, builder = builder.close(), None
        if record is not None:
            clips.append(record)
            covered_to = record.end_us

    try:
        for ref in plan.segments:
            for stream, p in _segment_packets(app, ref, request.start_us, request.end_us):
                counter.tick()
                if prev is not None and prev[1].wall_us >= p.wall_us:
                    continue  # overlapping segments (a recovered file next to its successor): already written
                shown = shown_us(p, stream.time_base)
                if shown >= request.end_us:
                    break  # after the window; frames later in decode order may need this one: none of them
                reason = None if prev is None else _break_reason(prev[0], prev[1], stream, p)
                if builder is not None and (reason is not None or (builder.lead and p.keyframe)):
                    finish()
                if builder is None:
                    if not p.keyframe:
                        continue  # a clip must start on a keyframe; the frames skipped count as a hole
                    if clips and shown - covered_to >= HOLE_US:
                        holes.append(GapRecord(covered_to, shown, "footage", "no frames stored"))
                    lead = shown < request.start_us and not request.redaction.enabled
                    name = _clip_name(plan.camera_id, len(clips) + 1, max(shown, request.start_us))
                    builder = _ClipBuilder(pkg, name, stream, p, request.redaction, keep_from_us=request.start_us,
                                           lead=lead, subject=subject)
                builder.add(p)
                prev = (stream, p)
            else:
                continue
            break
        if builder is not None:
            finish()
    except BaseException:
        if builder is not None:
            builder.abort()
        raise
    if not clips:
        holes.append(GapRecord(request.start_us, request.end_us, "footage", "no frames stored in the window"))
    else:
        if clips[0].first_frame_us - request.start_us >= HOLE_US:
            holes.insert(0, GapRecord(request.start_us, clips[0].first_frame_us, "footage", "no frames stored"))
        if request.end_us - covered_to >= HOLE_US:
            holes.append(GapRecord(covered_to, request.end_us, "footage", "no frames stored"))
    return CameraRecord(plan.camera_id, tuple(clips), merge_gaps(plan.recorder_gaps, holes, request.end_us))


def merge_gaps(recorder: tuple[GapRecord, ...], holes: list[GapRecord], window_end_us: int) -> tuple[GapRecord, ...]:
    """One outage is one gap: a hole in the stored footage that overlaps a gap the recorder logged is that
    gap (source ``recorder``, its reason, widened to cover both); other holes stay ``footage`` gaps."""
    out, left = [], list(holes)
    for g in recorder:
        end = g.end_us if g.end_us is not None else window_end_us
        touching = [h for h in left if h.start_us <= end and h.end_us >= g.start_us]
        left = [h for h in left if h not in touching]
        start = min([g.start_us, *(h.start_us for h in touching)])
        stop = None if g.end_us is None else max([g.end_us, *(h.end_us for h in touching)])
        out.append(GapRecord(start, stop, g.source, g.reason))
    return tuple(sorted(out + left, key=lambda g: (g.start_us, g.source)))
