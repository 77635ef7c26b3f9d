"""Plays: one audited viewing in the continuous player, and the fragments it fetches.

A *play* starts when someone starts the player on a ticket for one to four of its cameras
(:func:`start`): the policy is asked, and one ``footage.play`` audit entry names the cameras, the
ticket's window and the moment the play starts at.  Seeking, changing speed and stepping frames stay
inside that play; the fragments it fetches (:func:`fragment`) write no audit entry of their own.
Every fragment is authorised again (the ticket still approved, its access period not over, the camera
one of the ticket's and of the play's, the moment inside the window), and a refusal is a 403 that is
audited like any refused play.

Plays live in memory (:class:`Plays`, one per process, on the appliance): a play belongs to the
credential (session or token) that started it and lapses after :data:`IDLE_S` without a fragment; a
lapsed or unknown play is a 404, after which a player starts a new (audited) play.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from vms.access import policy as access
from vms.access.audit import audited
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso
from vms.evidence import fragments, playback

IDLE_S = 15 * 60  # a play without a fragment for this long has ended
MAX_PLAYS = 1024  # plays kept at once (the oldest lapse first)
MAX_CAMERAS = 4  # cameras side by side in one play


@dataclass
class Play:
    id: str
    credential_id: int
    user_id: int
    ticket_id: int
    cameras: tuple[str, ...]
    started_us: int
    used_s: float  # monotonic time of the last fragment
    fragments: int = 0
    bytes: int = field(default=0)


class Plays:
    """The plays of this process (thread-safe, bounded by count and idle time)."""

    def __init__(self, monotonic_s):
        self._monotonic_s = monotonic_s
        self._items: OrderedDict[str, Play] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, play: Play) -> None:
        with self._lock:
            self._expire()
            self._items[play.id] = play
            while len(self._items) > MAX_PLAYS:
                self._items.popitem(last=False)

    def get(self, play_id: str, credential_id: int) -> Play | None:
        """The play, touched, if it exists and belongs to the credential."""
        with self._lock:
            self._expire()
            play = self._items.get(play_id)
            if play is None or play.credential_id != credential_id:
                return None
            play.used_s = self._monotonic_s()
            self._items.move_to_end(play_id)
            return play

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire(self) -> None:
        now = self._monotonic_s()
        for key in [k for k, p in self._items.items() if now - p.used_s > IDLE_S]:
            del self._items[key]


def _refusal(app, principal, scope: access.TicketScope, camera_id: str, at_us: int) -> access.Refusal | None:
    return access.play_refusal(principal.role, principal.user_id, scope, camera_id, at_us, at_us + 1,
                               now_us=app.clock.now_us())


def start(app, principal, ticket_id: int, cameras: list[str], at_us: int | None) -> tuple[Play, access.TicketScope]:
    """Start an audited play of ``cameras`` (1..4 of the ticket's) at ``at_us`` (default: the window's start)."""
    cams = tuple(dict.fromkeys(cameras))
    if not 1 <= len(cams) <= MAX_CAMERAS:
        raise DomainError(Kind.INVALID, f"cameras: name 1 to {MAX_CAMERAS} different cameras of the ticket "
                                        f"({len(cams)} given)",
                                        key=N_("player.err.cameras"), params={"max": MAX_CAMERAS, "given": len(cams)})
    scope = playback.authorize_footage(app, principal, ticket_id)
    at = scope.start_us if at_us is None else at_us
    with audited(app.engine, app.clock, principal.actor, "footage.play", obj="camera:" + ",".join(c[:64] for c in cams),
                 ticket_id=ticket_id) as (_, entry):
        entry.detail = f"window={iso(scope.start_us)}..{iso(scope.end_us)} at={iso(at)} player=continuous"
        for cam in cams:
            problem = _refusal(app, principal, scope, cam, at)
            if problem:
                raise DomainError(Kind.FORBIDDEN, problem.message, key=problem.key, params=problem.params)
        play = Play(secrets.token_urlsafe(16), principal.credential_id, principal.user_id, ticket_id, cams,
                    app.clock.now_us(), app.clock.monotonic_s())
        entry.detail += f" play={play.id[:8]}"
    app.plays.add(play)
    return play, scope


def page_view(app, principal, ticket_id: int, cameras, start_us: int, end_us: int) -> None:
    """One ``footage.page`` entry for a page showing a ticket's footage (its timelines, activity and
    thumbnails are not audited one by one)."""
    with audited(app.engine, app.clock, principal.actor, "footage.page", obj="camera:" + ",".join(cameras),
                 ticket_id=ticket_id) as (_, entry):
        entry.detail = f"window={iso(start_us)}..{iso(end_us)}"


def fragment(app, principal, ticket_id: int, play_id: str, camera_id: str, at_us: int,
             span_s: float) -> fragments.Fragment:
    """One fragment of a play (authorised again; refusals audited, fragments not)."""
    scope = playback.authorize_play(app, principal, ticket_id, camera_id, at_us, at_us + 1)  # the policy first
    play = app.plays.get(play_id, principal.credential_id)
    if play is None or play.ticket_id != ticket_id:
        raise DomainError(Kind.NOT_FOUND, "this play has ended or was never started here; start a new play "
                                          f"(POST /api/tickets/{ticket_id}/plays)", key=N_("player.err.play_ended"))
    if camera_id not in play.cameras:
        raise DomainError(Kind.FORBIDDEN, f"camera {camera_id!r} is not part of this play "
                                          f"({', '.join(play.cameras)}); start a play that names it",
                                          key=N_("player.err.not_in_play"),
                                          params={"camera": camera_id, "cameras": ", ".join(play.cameras)})
    frag = fragments.build(app, camera_id, at_us, span_s, window=(scope.start_us, scope.end_us))
    play.fragments += 1
    play.bytes += frag.size
    return frag
