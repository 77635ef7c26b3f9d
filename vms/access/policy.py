"""Who may do what: the appliance's one access policy.  Pure decisions, no I/O.

Two questions, asked by the API's dependencies, the web pages (which show a button or form only when the
answer is yes), the CLI and the domain services alike:

* :func:`role_refusal` -- may a role do an :class:`Action` at all?  The table :data:`RULES` answers; a route or
  page declares its action and the role matrix tests are generated from this table and the app's routes.
* :func:`ticket_refusal` -- may this principal do this action on this ticket now?  The role rule first, then
  the object's rules: an operator acts only on their own tickets; a manager decides only tickets filed by
  someone else (four-eyes) and only while they are requested; footage and exports only while the ticket is
  approved (or exported/delivered) and its access window lasts, and exports only for export tickets; a
  delivery link only once the ticket is exported and while its window lasts.
* the other objects' rules: :func:`account_refusal` (nobody changes their own account through the
  administrator's page), :func:`confirm_refusal` (four eyes on accounts), :func:`link_refusal` (only a live
  link is revoked), :func:`export_job_visible`.

The web pages ask the same functions through one helper, ``can(action, obj)`` (api/web/controls.py), so a
button is shown exactly when pressing it would be allowed.

Administrators and auditors never see footage.  Every refusal is a :class:`Refusal` whose message a person
can act on (English, for logs and the API's ``detail``) with a stable message id (``key``, a catalog text in
api/locale) and its ``params``, so pages and the API say it in the reader's language, and the kind of error
the API and CLI answer with.  "Not yours" is answered
exactly as "does not exist" (:func:`no_such_ticket`), so an operator learns nothing about other people's tickets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_
from vms.core.times import iso


class Role(StrEnum):
    OPERATOR = "operator"
    MANAGER = "manager"
    AUDITOR = "auditor"
    ADMIN = "admin"


ROLES = tuple(r.value for r in Role)


class Action(StrEnum):
    ACCOUNT = "account"                  # one's own session, password and API tokens
    CAMERAS_LIST = "cameras.list"        # which cameras exist (no footage)
    TICKET_FILE = "ticket.file"
    TICKET_READ = "ticket.read"          # a ticket, the list, its holds
    TICKET_DECIDE = "ticket.decide"      # approve or deny
    TICKET_CLOSE = "ticket.close"        # close or withdraw
    FOOTAGE_VIEW = "footage.view"        # recorded spans and playback inside a ticket
    EXPORT = "export"                    # start, follow and cancel exports; see a ticket's packages
    DELIVERY_MANAGE = "delivery.manage"  # delivery links, deleting packages, the packages page
    PACKAGE_RELEASE = "package.release"  # review (preview) a request of access's export and approve it for delivery
    AUDIT_READ = "audit.read"            # the audit trail, its verification, deletions, retention
    ADMINISTER = "administer"            # user accounts and the cameras and storage overview
    OPS_READ = "ops.read"                # /metrics with credentials
    ACCOUNT_CONFIRM = "account.confirm"  # confirm or reject another administrator's change to an account
    DOORLOG_LOOKUP = "doorlog.lookup"    # door-log lookups inside a ticket's doors and window
    DOORLOG_STATUS = "doorlog.status"    # the door log's imported and rejected files (no identifiers)
    LIVE_VIEW = "live.view"              # watch a camera live, where the site turned live view on for it


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    why: str  # what a refused role is told (the role names are added)


_ALL = frozenset(Role)
_STAFF = frozenset({Role.OPERATOR, Role.MANAGER})

#: the table: which roles may do each action at all (object rules come on top, see :func:`ticket_refusal`)
RULES: dict[Action, Rule] = {
    Action.ACCOUNT: Rule(_ALL, "every signed-in user manages their own account"),
    Action.CAMERAS_LIST: Rule(_ALL, "the camera list"),
    Action.TICKET_FILE: Rule(_STAFF, "only an operator or a manager may file a ticket"),
    Action.TICKET_READ: Rule(_STAFF | {Role.AUDITOR}, "tickets are read by operators (their own), managers "
                                                      "and auditors"),
    Action.TICKET_DECIDE: Rule(frozenset({Role.MANAGER}), "only a manager may approve or deny a ticket"),
    Action.TICKET_CLOSE: Rule(_STAFF, "only the requester or a manager may close a ticket"),
    Action.FOOTAGE_VIEW: Rule(_STAFF, "footage is seen only by operators and managers"),
    Action.EXPORT: Rule(_STAFF, "only the requester or a manager may export a ticket's footage"),
    Action.DELIVERY_MANAGE: Rule(frozenset({Role.MANAGER}), "only a manager may manage delivery links and packages"),
    Action.PACKAGE_RELEASE: Rule(frozenset({Role.MANAGER}), "only a manager reviews a request of access's export "
                                                            "and approves it for delivery"),
    Action.AUDIT_READ: Rule(frozenset({Role.AUDITOR}), "the audit trail is the auditor's"),
    Action.ADMINISTER: Rule(frozenset({Role.ADMIN}), "user accounts, cameras and storage are the administrator's"),
    Action.OPS_READ: Rule(frozenset({Role.ADMIN, Role.AUDITOR}), "metrics are for administrators and auditors"),
    Action.ACCOUNT_CONFIRM: Rule(frozenset({Role.ADMIN, Role.AUDITOR}), "a change to an account is confirmed by "
                                                                        "another administrator or the auditor"),
    Action.DOORLOG_LOOKUP: Rule(_STAFF, "the door log is read only by operators and managers, inside a ticket"),
    Action.DOORLOG_STATUS: Rule(frozenset({Role.ADMIN, Role.AUDITOR}), "the door log's import status is for "
                                                                         "administrators and auditors"),
    Action.LIVE_VIEW: Rule(_STAFF, "live pictures are seen only by operators and managers"),
}

# ---------------------------------------------------------------- four eyes on accounts

#: roles that see footage, approve it, or give out roles: granting one needs a second person
_POWERFUL = frozenset({Role.OPERATOR, Role.MANAGER, Role.ADMIN})


def needs_confirmation(change: str, *, old_role: str | None = None, new_role: str | None = None) -> bool:
    """Whether a change to an account takes effect only when a second person confirms it: a new account or a
    role that sees or approves footage or administers (``add``, ``role``), re-enabling an account (``enable``),
    and a new password for a manager or an administrator (``reset``)."""
    if change in ("add", "role"):
        return new_role in _POWERFUL and new_role != old_role
    if change == "enable":
        return True
    if change == "reset":
        return old_role in (Role.MANAGER, Role.ADMIN)
    return False


def confirm_refusal(role: str, confirmer: str, requester: str, subject: str) -> Refusal | None:
    """Why this person may not confirm (or reject) a change to ``subject``'s account asked for by ``requester``."""
    refusal = role_refusal(role, Action.ACCOUNT_CONFIRM)
    if refusal:
        return refusal
    if confirmer == requester:
            return Refusal("the person who asked for a change to an account cannot confirm it; another administrator "
                       "or the auditor does", key=N_("refused.confirm_own"), kind=Kind.CONFLICT)
    if confirmer == subject:
        return Refusal("nobody confirms a change to their own account", key=N_("refused.confirm_subject"),
                       kind=Kind.CONFLICT)
    return None

# ---------------------------------------------------------------- ticket states

STATES = ("requested", "approved", "denied", "exported", "delivered", "closed", "expired")
OPEN_STATES = ("approved", "exported", "delivered")  # the access window applies
FINAL_STATES = ("denied", "closed", "expired")
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"approved", "denied", "closed"}),
    "approved": frozenset({"exported", "closed", "expired"}),
    "exported": frozenset({"exported", "delivered", "closed", "expired"}),
    "delivered": frozenset({"delivered", "closed", "expired"}),
    "denied": frozenset(),
    "closed": frozenset(),
    "expired": frozenset(),
}


def transition_problem(state: str, target: str) -> str | None:
    """Why a ticket that is ``state`` cannot become ``target`` (None when it can)."""
    if target in TRANSITIONS.get(state, frozenset()):
        return None
    if state in FINAL_STATES:
        return f"the ticket is {state}, which is final; file a new ticket"
    allowed = ", ".join(sorted(TRANSITIONS[state])) or "nothing"
    return f"a ticket that is {state} cannot become {target} (from {state} it can become: {allowed})"



@dataclass(frozen=True)
class TicketScope:
    """What of a ticket the decisions need."""

    id: int
    state: str
    requester_id: int
    cameras: tuple[str, ...]
    start_us: int
    end_us: int
    access_until_us: int | None
    action: str = "view"  # what the ticket asks for: view or export


@dataclass(frozen=True)
class Refusal:
    """Why not.  ``kind``: the error vocabulary's kind (permission denied, not found for someone else's
    object, conflict or failed precondition for a ticket in the wrong state); ``key`` and ``params``: the
    catalog text for it and its fields (a param named ``state``, ``role`` or ``roles`` holds domain words,
    which the reader's catalog words too), with ``message`` (English) as the fallback."""

    message: str
    key: str = ""
    kind: Kind = Kind.FORBIDDEN
    params: dict = field(default_factory=dict, compare=False, hash=False)

    def error(self) -> DomainError:
        return DomainError(self.kind, self.message, key=self.key, params=self.params)

    def raise_(self) -> None:
        raise self.error()


def no_such_ticket(ticket_id: int) -> Refusal:
    """The one answer for a ticket that does not exist and for one the principal may not know of (another
    operator's): byte for byte the same, so ticket numbers tell an operator nothing about other people's
    tickets."""
    return Refusal(f"ticket {ticket_id} does not exist", key=N_("refused.not_yours"), kind=Kind.NOT_FOUND,
                   params={"id": ticket_id})


def enforce(refusal: Refusal | None) -> None:
    """Raise the refusal as a DomainError (nothing when there is none)."""
    if refusal is not None:
        refusal.raise_()


def roles_for(action: Action) -> tuple[str, ...]:
    return tuple(r.value for r in Role if r in RULES[action].roles)


def role_refusal(role: str, action: Action) -> Refusal | None:
    """Why ``role`` may never do ``action`` (None: it may, subject to the object's rules)."""
    rule = RULES[action]
    if role in rule.roles:
        return None
    return Refusal(f"{rule.why}; this needs the role {' or '.join(roles_for(action))}, you are {role}",
                   key=N_("refused.role"), params={"roles": roles_for(action), "role": role})


def may(role: str, action: Action) -> bool:
    return role_refusal(role, action) is None


def ticket_refusal(role: str, user_id: int, action: Action, ticket: TicketScope, *,
                   now_us: int | None = None) -> Refusal | None:
    """Why the principal may not do ``action`` on ``ticket`` (None: they may).  ``now_us`` is needed for the
    actions that depend on the access window (footage and exports)."""
    refusal = role_refusal(role, action)
    if refusal:
        return refusal
    own = user_id == ticket.requester_id
    if role == Role.OPERATOR and not own and action != Action.TICKET_FILE:
        return no_such_ticket(ticket.id)
    if action == Action.TICKET_DECIDE:
        if own:
            return Refusal("four-eyes rule: you filed this ticket, so you cannot decide it; another manager must "
                           "approve or deny it", key=N_("refused.four_eyes"))
        if ticket.state != "requested":
            return Refusal(transition_problem(ticket.state, "approved").replace(
                "cannot become approved", "cannot become approved or denied"),
                key=N_("refused.final") if ticket.state in FINAL_STATES else N_("refused.not_requested"),
                kind=Kind.CONFLICT, params={"id": ticket.id, "state": ticket.state})
    elif action == Action.TICKET_CLOSE:
        if ticket.state in FINAL_STATES:
            return Refusal(transition_problem(ticket.state, "closed"), key=N_("refused.final"), kind=Kind.CONFLICT,
                           params={"id": ticket.id, "state": ticket.state})
    elif action == Action.DELIVERY_MANAGE:
        return _delivery_refusal(ticket, now_us)
    elif action == Action.PACKAGE_RELEASE:
        return release_refusal(role, user_id, ticket.requester_id)
    elif action in (Action.FOOTAGE_VIEW, Action.EXPORT):
        if action == Action.EXPORT and ticket.action != "export":
            return Refusal(f"ticket {ticket.id} asks only to view footage; file an export ticket to export",
                           key=N_("refused.view_only"), params={"id": ticket.id})
        if ticket.state not in OPEN_STATES:
            return Refusal(f"ticket {ticket.id} is {ticket.state}; footage is available only once a manager has "
                           "approved it", key=N_("refused.not_open"), params={"id": ticket.id, "state": ticket.state},
                           kind=Kind.CONFLICT if ticket.state in FINAL_STATES else Kind.PRECONDITION)
        if now_us is None or ticket.access_until_us is None or now_us >= ticket.access_until_us:
            return Refusal(f"the access window of ticket {ticket.id} has ended", key=N_("refused.window_over"),
                           params={"id": ticket.id})
    return None


def _delivery_refusal(ticket: TicketScope, now_us: int | None) -> Refusal | None:
    """A delivery link for a ticket's package: an export ticket, exported, inside its access window.  The
    ticket becomes ``delivered`` only when a recipient has downloaded (vms/evidence/download.py)."""
    if ticket.action != "export":
        return Refusal(f"ticket {ticket.id} asks only to view footage; file an export ticket to export",
                       key=N_("refused.view_only"))
    if ticket.state in ("requested", "approved"):
        return Refusal(f"ticket {ticket.id} has not been exported yet; export it before delivering",
                       key=N_("refused.not_exported"), kind=Kind.CONFLICT)
    if ticket.state not in OPEN_STATES:
        return Refusal(f"ticket {ticket.id} is {ticket.state}; a delivery link needs an exported ticket whose "
                       "access window lasts", key=N_("refused.final"), kind=Kind.CONFLICT)
    if now_us is None or ticket.access_until_us is None or now_us >= ticket.access_until_us:
        return Refusal(f"the access window of ticket {ticket.id} has ended", key=N_("refused.window_over"))
    return None


def release_refusal(role: str, user_id: int, requester_id: int) -> Refusal | None:
    """Why the principal may not review (preview) or approve the export of a request of access filed by
    ``requester_id`` (None: they may): a manager, and not the one who filed it (four eyes on what the data
    subject receives; vms/evidence/release.py)."""
    refusal = role_refusal(role, Action.PACKAGE_RELEASE)
    if refusal is None and user_id == requester_id:
        return Refusal("you filed this request of access; another manager reviews its export and approves it for "
                       "delivery", key=N_("refused.release_own"))
    return refusal


def footage_refusal(role: str, user_id: int, ticket: TicketScope, *, now_us: int) -> Refusal | None:
    """Why the user may not see any footage of the ticket now (None: they may)."""
    return ticket_refusal(role, user_id, Action.FOOTAGE_VIEW, ticket, now_us=now_us)


def play_refusal(role: str, user_id: int, ticket: TicketScope, camera_id: str, start_us: int, end_us: int, *,
                 now_us: int) -> Refusal | None:
    """Why the user may not play ``camera_id`` in [start_us, end_us) under the ticket now."""
    refusal = footage_refusal(role, user_id, ticket, now_us=now_us)
    if refusal:
        return refusal
    if camera_id not in ticket.cameras:
        return Refusal(f"camera {camera_id!r} is not one of ticket {ticket.id}'s cameras "
                       f"({', '.join(ticket.cameras)})", key=N_("refused.not_a_ticket_camera"),
                       params={"id": ticket.id, "camera": camera_id[:64], "cameras": ", ".join(ticket.cameras)})
    if end_us <= start_us:
        return Refusal("the requested span is empty or reversed", key=N_("window.reversed"))
    if start_us < ticket.start_us or end_us > ticket.end_us:
        return Refusal(f"the requested span {iso(start_us)} .. {iso(end_us)} lies outside ticket {ticket.id}'s "
                       f"window {iso(ticket.start_us)} .. {iso(ticket.end_us)}", key=N_("refused.span_outside"),
                       params={"id": ticket.id})
    return None


US_PER_DAY = 86_400_000_000


def window_refusal(start_us: int, end_us: int, *, now_us: int, legal_max_days: int) -> Refusal | None:
    """Why a ticket filed at ``now_us`` may not ask for the window [start_us, end_us) (None: it may).

    A window lies wholly in the past: it ends no later than the filing time.  Footage recorded after a ticket
    was filed is never covered by it (its approval would otherwise show footage recorded after the approval,
    and its holds would keep footage nobody asked about); a later incident gets a ticket of its own."""
    if end_us <= start_us:
        return Refusal("end: the end must be after the start (the window is reversed or empty)",
                       key=N_("window.reversed"), kind=Kind.INVALID)
    if end_us - start_us > legal_max_days * US_PER_DAY:
        return Refusal(f"end: at most {legal_max_days} days (the legal maximum retention) may be requested",
                       key=N_("window.too_long"), kind=Kind.INVALID, params={"days": legal_max_days})
    if start_us >= now_us:
        return Refusal("start: the start lies in the future; footage can only be requested once recorded",
                       key=N_("window.future_start"), kind=Kind.INVALID)
    if end_us > now_us:
        return Refusal(f"end: {iso(end_us, 'seconds')} lies in the future; a ticket's window must end no later "
                       f"than its filing time ({iso(now_us, 'seconds')}); for later footage file another "
                       "ticket once it is recorded", key=N_("window.future_end"), kind=Kind.INVALID,
                       params={"now": iso(now_us, "seconds")})
    return None


def door_lookup_refusal(role: str, user_id: int, ticket: TicketScope, doors: tuple[str, ...], door_id_lookup: bool,
                        wanted_doors: tuple[str, ...], start_us: int, end_us: int, *, by_identifier: bool,
                        now_us: int) -> Refusal | None:
    """Why the user may not search the door log at ``wanted_doors`` in [start_us, end_us) under the ticket now
    (None: they may): the ticket's state and access window as for footage, then its doors, its window, and for a
    search by CPR or card number the ticket's explicit permission."""
    refusal = ticket_refusal(role, user_id, Action.DOORLOG_LOOKUP, ticket, now_us=now_us)
    if refusal is None:
        refusal = ticket_refusal(role, user_id, Action.FOOTAGE_VIEW, ticket, now_us=now_us)
    if refusal:
        return refusal
    if not doors:
        return Refusal(f"ticket {ticket.id} covers no doors", key=N_("refused.no_doors"), params={"id": ticket.id})
    outside = sorted(set(wanted_doors) - set(doors))
    if not wanted_doors or outside:
        return Refusal(f"door(s) {', '.join(outside) or '(none)'} are not among ticket {ticket.id}'s doors "
                       f"({', '.join(doors)})", key=N_("refused.door_outside"),
                       params={"id": ticket.id, "doors": ", ".join(doors)})
    if end_us <= start_us:
        return Refusal("the requested span is empty or reversed", key=N_("window.reversed"), kind=Kind.INVALID)
    if start_us < ticket.start_us or end_us > ticket.end_us:
        return Refusal(f"the requested span {iso(start_us)} .. {iso(end_us)} lies outside ticket {ticket.id}'s "
                       f"window {iso(ticket.start_us)} .. {iso(ticket.end_us)}", key=N_("refused.span_outside"),
                       params={"id": ticket.id})
    if by_identifier and not door_id_lookup:
        return Refusal(f"ticket {ticket.id} does not allow searching for one CPR or card number; file a ticket "
                       "that says so", key=N_("refused.no_id_lookup"), params={"id": ticket.id})
    return None


ACCOUNT_CHANGES = ("role", "disable", "enable", "reset", "contact")


def account_refusal(actor_user_id: int | None, subject_user_id: int, change: str) -> Refusal | None:
    """Why the acting administrator may not make ``change`` to the account ``subject_user_id`` (None: they
    may).  Nobody changes their own account through the administrator's page: not its role, not disabling it,
    not a one-time password (their own password is changed on the password page); another administrator
    does."""
    if actor_user_id is not None and actor_user_id == subject_user_id and change in ACCOUNT_CHANGES:
        what = {"role": "change your own role", "disable": "disable your own account",
                "enable": "enable your own account", "reset": "reset your own password",
                "contact": "change your own e-mail address"}[change]
        return Refusal(f"you cannot {what}; ask another administrator" +
                       ("; your own password is changed on the password page" if change == "reset" else ""),
                       key=N_("refused.own_account"), kind=Kind.CONFLICT)
    return None


def link_refusal(role: str, link_state: str) -> Refusal | None:
    """Why a delivery link in ``link_state`` is not offered for revoking (None: it is; only a live link is).
    Revoking an expired or used-up link changes nothing a recipient can do, so the pages do not offer it; the
    API still accepts it (and refuses only a link revoked already)."""
    refusal = role_refusal(role, Action.DELIVERY_MANAGE)
    if refusal:
        return refusal
    if link_state != "live":
        return Refusal(f"the link is {link_state} already; only a live link is revoked", key=N_("refused.link_ended"),
                       kind=Kind.CONFLICT)
    return None


def export_job_visible(role: str, user_id: int, requester_id: int, started_by: int) -> bool:
    """An export job is followed by managers, and by an operator who filed its ticket or started it."""
    if not may(role, Action.EXPORT):
        return False
    return role == Role.MANAGER or user_id in (requester_id, started_by)


def token_revocable(role: str, user_id: int, token_owner_id: int) -> bool:
    """One's own API tokens; an administrator may revoke anyone's."""
    return user_id == token_owner_id or role == Role.ADMIN


def own_tickets_only(role: str) -> bool:
    """Whether the role reads only the tickets it filed (operators)."""
    return role == Role.OPERATOR


def home_page(role: str) -> str:
    """Where a role lands after signing in (the web UI)."""
    return {Role.OPERATOR: "/tickets", Role.MANAGER: "/queue", Role.AUDITOR: "/audit", Role.ADMIN: "/admin"}[role]

