"""Region search: when did something change inside a rectangle of one camera's picture?

A search scans the keyframes shown in its span (inside the ticket's window), decodes each on its own at
reduced cost (one thread, no loop filter), scales its luma to :data:`SCAN_WIDTH` pixels wide and compares
the region with the previous keyframe's: the share of the region's pixels whose luma moved by more than
:data:`PIXEL_DELTA` is the keyframe's score.  A run of keyframes scoring :data:`MIN_SCORE` or more is one
hit, at its first keyframe (when the change was first seen), with the run's highest score.

Jobs run on a bounded pool (``workers`` threads, niced to :data:`NICE` so the recorder always comes first)
with at most ``max_pending`` unfinished searches; each has progress (share of the span scanned) and can
be cancelled.  Searches, their hits and thumbnails live in memory only.  A search is seen only by the
person who started it, under the same gate as its start (so not after the ticket's access period); a hit
is shown only while its segment is still readable (not deleted, its key not shredded).  A running search
stops (failed) when its ticket's access ends.  Each search is audited once (``footage.search``: camera,
span, region) when it starts.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np
from sqlalchemy.orm import Session

from storage.sql import index
from vms.access.audit import audited
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso
from vms.finding import gate
from vms.finding.frames import Decoder, gray, keyframes

log = logging.getLogger(__name__)

SCAN_WIDTH = 320
PIXEL_DELTA = 25  # luma steps (of 255) a pixel must move to count as changed
MIN_SCORE = 0.02  # share of the region's pixels that must change
NICE = 10
RECHECK_S = 5.0  # how often a running search asks the gate again
KEEP = 64  # finished searches kept in memory (oldest forgotten first)


@dataclass(frozen=True)
class Region:
    """A rectangle as fractions of the picture: x, y of its top-left corner, w, h its size."""

    x: float
    y: float
    w: float
    h: float

    def check(self) -> Region:
        for name in ("x", "y", "w", "h"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise DomainError(Kind.INVALID, f"region.{name}: a fraction of the picture 0..1, not {v}",
                                  key=N_("search.err.fraction"), params={"name": name, "value": v})
        if self.w <= 0 or self.h <= 0:
            raise DomainError(Kind.INVALID, "region: w and h must be more than 0", key=N_("search.err.empty"))
        if self.x + self.w > 1.000001 or self.y + self.h > 1.000001:
            raise DomainError(Kind.INVALID, "region: x + w and y + h must be at most 1 (inside the picture)",
                              key=N_("search.err.outside"))
        return self

    def crop(self, img: np.ndarray) -> np.ndarray:
        hgt, wid = img.shape[:2]
        x0, y0 = min(wid - 1, int(self.x * wid)), min(hgt - 1, int(self.y * hgt))
        x1, y1 = max(x0 + 1, round((self.x + self.w) * wid)), max(y0 + 1, round((self.y + self.h) * hgt))
        return img[y0:y1, x0:x1]


@dataclass(frozen=True)
class Hit:
    at_us: int
    score: float
    segment_id: int


@dataclass
class Search:
    id: str
    ticket_id: int
    camera_id: str
    user_id: int
    region: Region
    start_us: int
    end_us: int
    principal: object = field(repr=False)
    state: str = "running"  # running | done | cancelled | failed
    progress: float = 0.0
    error: str = ""
    hits: list[Hit] = field(default_factory=list)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state != "running"


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)  # this thread only (Linux)
    except (OSError, AttributeError):
        pass


class Searches:
    """The appliance's searches and their worker pool (threads start with the first search)."""

    def __init__(self, app, *, workers: int = 1, max_pending: int = 8):
        self.app, self.workers, self.max_pending = app, workers, max_pending
        self._items: OrderedDict[str, Search] = OrderedDict()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def start(self, principal, ticket_id: int, camera_id: str, region: Region, start_us: int | None,
              end_us: int | None) -> Search:
        region.check()
        sc = gate.scope(self.app, principal, ticket_id)
        start_us = sc.start_us if start_us is None else start_us
        end_us = sc.end_us if end_us is None else end_us
        if end_us <= start_us:
            raise DomainError(Kind.INVALID, f"end: {iso(end_us)} is not after start {iso(start_us)}",
                              key=N_("window.reversed"))
        gate.authorize(self.app, principal, ticket_id, camera_id, start_us, end_us, action="footage.search")
        with self._lock:
            pending = sum(1 for s in self._items.values() if not s.finished)
            if pending >= self.max_pending:
                raise DomainError(Kind.CONFLICT, f"{pending} searches are running; wait for one to finish or "
                                                 "cancel one", key=N_("search.err.busy"), params={"n": pending})
            search = Search(secrets.token_hex(8), ticket_id, camera_id, principal.user_id, region, start_us,
                            end_us, principal)
        with audited(self.app.engine, self.app.clock, principal.actor, "footage.search", obj=f"camera:{camera_id}",
                     ticket_id=ticket_id) as (_, entry):
            entry.detail = (f"search={search.id} span={iso(start_us)}..{iso(end_us)} "
                            f"region=x{region.x:.4f},y{region.y:.4f},w{region.w:.4f},h{region.h:.4f}")
        with self._lock:
            self._items[search.id] = search
            self._forget_old()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="search", initializer=_lower_priority)
            self._pool.submit(self._run, search)
        return search

    def get(self, principal, ticket_id: int, search_id: str) -> Search:
        """The search as its starter may see it now (gated again; hits of shredded footage dropped)."""
        with self._lock:
            search = self._items.get(search_id)
        if search is None or search.ticket_id != ticket_id or search.user_id != principal.user_id:
            gate.scope(self.app, principal, ticket_id)  # a ticket that is not theirs answers as such first
            raise DomainError(Kind.NOT_FOUND, f"search {search_id[:32]} does not exist", key=N_("search.err.unknown"))
        gate.authorize(self.app, principal, ticket_id, search.camera_id, search.start_us, search.end_us,
                       action="footage.search")
        hits = list(search.hits)
        if hits:
            with Session(self.app.engine) as s:
                live = index.readable_segments(s, {h.segment_id for h in hits})
            search.hits = [h for h in search.hits if h.segment_id in live]
        return search

    def cancel(self, principal, ticket_id: int, search_id: str) -> Search:
        search = self.get(principal, ticket_id, search_id)
        search.cancel_requested.set()
        if not search.finished:
            deadline = time.monotonic() + 2.0
            while not search.finished and time.monotonic() < deadline:
                time.sleep(0.02)
        return search

    def shutdown(self) -> None:
        with self._lock:
            for s in self._items.values():
                s.cancel_requested.set()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _forget_old(self) -> None:
        done = [k for k, s in self._items.items() if s.finished]
        for k in done[: max(0, len(done) - KEEP)]:
            del self._items[k]

    def _run(self, search: Search) -> None:
        try:
            search.state = scan(self.app, search)
        except DomainError as exc:
            search.state, search.error = "failed", exc.message
        except Exception as exc:  # a search must never take the appliance down
            log.error("search %s on camera %s failed (%s)", search.id, search.camera_id, exc.__class__.__name__)
            search.state, search.error = "failed", f"internal error ({exc.__class__.__name__})"


def scan(app, search: Search) -> str:
    """Scan the search's span; returns its final state."""
    decoder, prev, in_run = Decoder(fast=True), None, False
    total = max(1, search.end_us - search.start_us)
    checked = time.monotonic()
    for kf in keyframes(app, search.camera_id, search.start_us, search.end_us):
        if search.cancel_requested.is_set():
            return "cancelled"
        if search.principal is not None and time.monotonic() - checked >= RECHECK_S:  # None: not from the API
            checked = time.monotonic()
            problem = gate.still_open(app, search.principal, search.ticket_id, search.camera_id, search.start_us,
                                      search.end_us)
            if problem:
                search.hits, search.error = [], problem
                return "failed"
        frame = decoder.decode(kf)
        search.progress = min(1.0, (kf.shown_us - search.start_us) / total)
        if frame is None:
            continue
        crop = search.region.crop(gray(frame, SCAN_WIDTH))
        if prev is not None and prev.shape == crop.shape:
            score = float(np.count_nonzero(cv2.absdiff(crop, prev) > PIXEL_DELTA)) / crop.size
            if score >= MIN_SCORE:
                if not in_run:
                    search.hits.append(Hit(kf.shown_us, round(score, 4), kf.segment_id))
                elif score > search.hits[-1].score:
                    last = search.hits[-1]
                    search.hits[-1] = Hit(last.at_us, round(score, 4), last.segment_id)
                in_run = True
            else:
                in_run = False
        prev = crop
    if search.cancel_requested.is_set():
        return "cancelled"
    search.progress = 1.0
    return "done"
