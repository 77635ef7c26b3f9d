"""Request and response bodies.  Every text field is bounded and refuses NUL,
control characters and unpaired surrogates (which the databases cannot store),
so bad input is a 422 naming the field, never a 500.  Times are RFC 3339 with
a time zone (naive times are refused: they would be ambiguous); responses are UTC.

Strict where a guess would be wrong: a time is an ISO 8601 text with a zone (a number,
a Unix time, is refused, in bodies and query parameters alike: :data:`Instant`); a yes/no
is a JSON ``true``/``false`` (``"yes"``, ``1`` or ``"true"`` are refused: :data:`Flag`);
a count is a JSON integer (not ``"30"``, ``30.5`` or ``true``: :data:`Count`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from vms.access import policy
from vms.core.doorlog_config import DOOR_ID
from vms.core.i18n import N_

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_ID = 2**62


class Invalid(ValueError):
    """A value refused by one of our validators, with a message id (``invalid.*`` in api/locale) and its params
    for people; ``str()`` is the English text of the 422's ``detail`` (api/problems.py)."""

    def __init__(self, message: str, key: str, **params):
        super().__init__(message)
        self.key, self.params = key, params


def _clean(value: str) -> str:
    if _CONTROL.search(value):
        raise Invalid("control characters are not allowed", N_("invalid.control_characters"))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("not valid Unicode text (unpaired surrogate)", N_("invalid.surrogate")) from None
    return value


def text_problem(value: str) -> str | None:
    """Why a text field is refused (control characters, unpaired surrogates), or None: the web forms use the
    same rule as the schemas."""
    try:
        _clean(value)
    except ValueError as exc:
        return str(exc)
    return None


def _line(value: str) -> str:
    if "\n" in value or "\r" in value or "\t" in value:
        raise Invalid("must be a single line", N_("invalid.single_line"))
    return _clean(value)


def Text(max_length: int, min_length: int = 1):  # noqa: N802 - a type factory
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(_clean)]


def Line(max_length: int, min_length: int = 1):  # noqa: N802
    return Annotated[str, Field(min_length=min_length, max_length=max_length), AfterValidator(_line)]


CameraId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="camera id")]
UserName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$", description="2-64 lower-case letters, digits, '.', '-', '_'")]
Role = Literal[policy.ROLES]  # the policy's roles (vms/access/policy.py)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


EARLIEST = EPOCH
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _instant(t: datetime) -> datetime:
    if not EARLIEST <= t < LATEST:
        raise Invalid(f"time {t.isoformat()} is out of range: allowed from {EARLIEST.isoformat()} "
                      f"to before {LATEST.isoformat()}", N_("invalid.time_range"), time=t.isoformat(),
                      earliest=EARLIEST.date().isoformat(), latest=LATEST.date().isoformat())
    return t


_DATE_TIME = r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
_ZONED = re.compile(_DATE_TIME + r"([Zz]|[+-]\d{2}:?\d{2})")
_NAIVE = re.compile(_DATE_TIME)
_NUMBER = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*")
_EXAMPLE = "e.g. 2026-03-01T10:00:00Z or 2026-03-01T11:00:00+01:00"


def _iso_text(value: object) -> object:
    """Only ISO 8601 text with a zone becomes a time: pydantic would also take a number (or a text of digits)
    as a Unix time, and a client sending one has most likely confused seconds, milliseconds or zones."""
    if isinstance(value, datetime):  # a default, or a caller inside the appliance
        return value
    if not isinstance(value, str) or _NUMBER.fullmatch(value):
        raise Invalid(f"a time is an ISO 8601 text with a time zone, {_EXAMPLE} (numbers such as Unix "
                      f"times are not accepted)", N_("invalid.time_number"))
    if _NAIVE.fullmatch(value):
        raise Invalid(f"the time has no time zone: add Z (UTC) or an offset such as +01:00, {_EXAMPLE}",
                      N_("invalid.time_zone"))
    if not _ZONED.fullmatch(value):
        raise Invalid(f"not an ISO 8601 date and time with a time zone, {_EXAMPLE}", N_("invalid.time_format"))
    return value


# A point in time as the API accepts it: RFC 3339 text with a time zone, 1970 .. 2199 (UTC inside, microseconds)
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_instant)]
# A yes/no in a body: JSON true or false only
Flag = Annotated[bool, Strict()]
# A number of things or days in a body: a JSON integer only
Count = Annotated[int, Strict()]


def _true_false(value: object) -> object:
    if isinstance(value, bool) or value in ("true", "false"):
        return value
    raise Invalid("true or false", N_("invalid.true_false"))


# A yes/no in a query string: the texts true or false only (not yes, 1, on)
QueryFlag = Annotated[bool, BeforeValidator(_true_false)]


def to_us(t: datetime) -> int:
    return (t - EPOCH) // timedelta(microseconds=1)


def from_us(t_us: int | None) -> datetime | None:
    return None if t_us is None else EPOCH + timedelta(0, 0, t_us)  # positional: a third cheaper (listings make many)


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- auth


class SignIn(Body):
    name: Line(64)
    password: Annotated[str, Field(min_length=1, max_length=256)]


class UserPublic(BaseModel):
    id: int
    name: str
    role: str
    disabled: bool = False
    must_change_password: bool = False
    locked_until: datetime | None = None


class UserChanged(UserPublic):
    confirmation: Literal["done", "pending", "unconfirmed"] | None = Field(
        None, description="whether the change waits for a second person (pending; GET /api/account-changes) or "
                          "was made without one (unconfirmed, flagged until someone confirms)")


class SignedIn(BaseModel):
    user: UserPublic
    csrf_token: str = Field(description="send as X-CSRF-Token with unsafe requests made with the session cookie")
    expires_at: datetime


class PasswordChange(Body):
    current_password: Annotated[str, Field(min_length=1, max_length=256)]
    new_password: Annotated[str, Field(min_length=1, max_length=256)]


class TokenCreate(Body):
    label: Line(100)
    days: Annotated[Count, Field(ge=1, le=365, description="lifetime; at most api.token_max_days")] = 30


class TokenPublic(BaseModel):
    id: int
    label: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class TokenIssued(TokenPublic):
    token: str = Field(description="the bearer token; shown only now")


# ---------------------------------------------------------------- users


class UserCreate(Body):
    name: UserName
    role: Role


class UserCreated(BaseModel):
    user: UserPublic
    one_time_password: str = Field(description="shown only now; the user must change it at first sign-in")
    confirmation: Literal["done", "pending", "unconfirmed"] = Field(
        "done", description="pending: the account works once another administrator or the auditor confirms "
                            "(GET /api/account-changes); unconfirmed: nobody else could, so it works now, flagged")


class AccountChangePublic(BaseModel):
    entry: int = Field(description="the audit entry that records the change; confirm or reject it by this number")
    at: datetime
    requester: str
    change: Literal["add", "role", "enable", "reset"] | str
    user: str
    description: str
    made_without_confirmation: bool


class UserUpdate(Body):
    role: Role | None = None
    disabled: Flag | None = None


# ---------------------------------------------------------------- tickets


class TicketCreate(Body):
    cameras: Annotated[list[CameraId], Field(max_length=64, description="at least one camera or door")] = []
    doors: Annotated[list[Annotated[str, Field(pattern=DOOR_ID.pattern)]],
                     Field(max_length=64, description="doors of the door log (docs/design/doorlog.md)")] = []
    door_id_lookup: Annotated[Flag, Field(description="the ticket also allows asking when one CPR or card "
                                                      "number passed its doors")] = False
    start: Instant
    end: Instant
    description: Text(4000)
    purpose: Text(1000)
    legal_basis: Text(1000)
    action: Literal["view", "export"]
    recipient: Literal["internal", "police", "ssp", "data_subject"]
    received: Instant | None = Field(None, description="a data subject's request of access (GDPR art. 15): when it "
                                                       "was received; holds are placed at once and the answer is due "
                                                       "one month later (action export, recipient data_subject)")


class Decision(Body):
    reason: Text(1000)


class CameraNamePublic(BaseModel):
    """What people read for a camera (config keys ``name`` and ``place``); ``id`` is what the API takes."""

    id: str
    name: str
    place: str


def camera_name(n) -> CameraNamePublic:
    """From a :class:`vms.recording.names.CameraName`."""
    return CameraNamePublic(id=n.id, name=n.display, place=n.place)


class TicketPublic(BaseModel):
    id: int
    state: str
    requester: str
    action: str
    recipient: str
    description: str
    purpose: str
    legal_basis: str
    start: datetime
    end: datetime
    cameras: list[str]
    camera_names: list[CameraNamePublic]  # the same cameras, in the same order, as people read them
    created_at: datetime
    updated_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    access_until: datetime | None
    closed_at: datetime | None
    next_states: list[str]
    doors: list[str] = []
    door_id_lookup: bool = False
    received_at: datetime | None = Field(None, description="a request of access: when it was received")
    deadline: datetime | None = Field(None, description="a request of access: when the answer is due (one month)")


class HoldPublic(BaseModel):
    camera: str
    start: datetime
    end: datetime
    placed_at: datetime
    released_at: datetime | None


class Span(BaseModel):
    start: datetime
    end: datetime


class GapPublic(BaseModel):
    start: datetime
    end: datetime | None
    reason: str


class CameraFootagePublic(BaseModel):
    camera: str
    recorded: list[Span]
    gaps: list[GapPublic]
    missing: list[Span]
    play_url: str


class CameraPublic(BaseModel):
    """One camera of the overview: who it is, where, whether it records; never footage or its source."""

    id: str
    name: str
    place: str
    node_id: str
    retain_days: int
    removed: bool
    enabled: bool
    recording: bool  # the recorder saved this camera's state lately and it was receiving packets
    offline_since: datetime | None  # start of the open gap (None while recording)
    last_gap_start: datetime | None  # the newest closed gap
    last_gap_end: datetime | None
    last_gap_reason: str | None


# ---------------------------------------------------------------- audit


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str
    action: str
    object: str
    ticket_id: int | None
    client: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryPublic]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page; null on the last page")


class VerifyPublic(BaseModel):
    ok: bool
    entries: int
    bad_entry: int | None
    problem: str
    triggers_present: bool


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    next_offset: int | None


class TicketPage(Page):
    items: list[TicketPublic]


class UserPage(Page):
    items: list[UserPublic]
