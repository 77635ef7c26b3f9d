"""SQLAlchemy 2 table definitions for the index (schema version: see migrations/).

Times are UTC microseconds since the Unix epoch (``*_us``); sizes in bytes.
The schema is created and changed only by Alembic migrations
(``storage/migrations``); a unit test checks that these models and the
migrations agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT primary keys do not auto-increment on SQLite; INTEGER does.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger)
    #: set when the camera disappeared from the configuration; its footage stays
    #: under the retention it had until it expires.
    removed_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    retain_days: Mapped[int] = mapped_column(Integer)
    # migration 0009: what people read (the recording node's config keys name, place, enabled)
    name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    place: Mapped[str] = mapped_column(String(120), server_default="")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class DayKey(Base):
    """One key per camera per UTC day, stored only wrapped by the master key.  ``wrapped`` is
    NULL once shredded.  It wraps the day's hour keys (:class:`HourKey`); segments written
    before hour keys (format version 1) derive their keys from it directly.  ``segments.key_id``
    names this row for both."""

    __tablename__ = "day_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    day: Mapped[str] = mapped_column(String(10))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_id: Mapped[str] = mapped_column(String(16))
    created_us: Mapped[int] = mapped_column(BigInteger)
    shredded_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (UniqueConstraint("camera_id", "day", name="uq_day_keys_camera_day"),)


class HourKey(Base):
    """One data key per camera per UTC hour (format version 2 segments derive their keys from it),
    wrapped by its day's key, not the master key: a rotation leaves these rows alone, and shredding
    the day destroys its hours too (their rows are then deleted).  ``wrapped`` is NULL once shredded;
    ``start_us`` is the hour's first microsecond (UTC), ``camera_id`` the day row's (the janitor's
    probes need both without a join)."""

    __tablename__ = "hour_keys"
    day_key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("day_keys.id"), primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    camera_id: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    shredded_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        # partial: only keys not yet shredded, the ones the janitor's daily pass looks at
        Index("ix_hour_keys_live", "camera_id", "start_us",
              sqlite_where=text("wrapped IS NOT NULL"), postgresql_where=text("wrapped IS NOT NULL")),
    )


class Segment(Base):
    """A sealed segment file.  ``status``: ``sealed`` or ``deleting`` (the janitor
    marks before it unlinks; a row in ``deleting`` is finished by the next sweep)."""

    __tablename__ = "segments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    node_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("day_keys.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    packets: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10), server_default="sealed")
    recovered: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    __table_args__ = (
        Index("ix_segments_camera_start", "camera_id", "start_us"),
        Index("ix_segments_key", "key_id"),
        Index("uq_segments_path", "path", unique=True),
        # partial: stays empty except while a deletion is in flight, so finding
        # unfinished deletions costs nothing on a full index
        Index(
            "ix_segments_deleting",
            "status",
            sqlite_where=text("status = 'deleting'"),
            postgresql_where=text("status = 'deleting'"),
        ),
    )


class SegmentKey(Base):
    """A held segment's own key, wrapped by the master key; survives the hour-key and day-key shreds."""

    __tablename__ = "segment_keys"
    segment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    master_id: Mapped[str] = mapped_column(String(16))


class SegmentActivity(Base):
    """A segment's per-second activity levels (storage/format/activity.py), encrypted under a key derived
    from the segment's hour key: destroyed with that key, and removed with the segment's row."""

    __tablename__ = "segment_activity"
    segment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    record: Mapped[bytes] = mapped_column(LargeBinary)


class Hold(Base):
    """A legal hold on one camera's footage in [start_us, end_us).  Active while
    ``released_us`` is NULL or in the future."""

    __tablename__ = "holds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    released_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_holds_camera", "camera_id", "start_us"),)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_us: Mapped[int] = mapped_column(BigInteger)
    failed_logins: Mapped[int] = mapped_column(Integer, server_default="0")
    locked_until_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)  # migration 0008: notifications
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)  # the mails' language (da, en)


class CameraState(Base):
    """Live state of a camera as its recorder last saw it (one row per camera)."""

    __tablename__ = "camera_state"
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64))
    online: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    last_packet_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    packets: Mapped[int] = mapped_column(BigInteger, server_default="0")
    bytes_received: Mapped[int] = mapped_column(BigInteger, server_default="0")
    fps: Mapped[float] = mapped_column(Float, server_default="0")
    bitrate_bps: Mapped[float] = mapped_column(Float, server_default="0")
    reconnects: Mapped[int] = mapped_column(Integer, server_default="0")
    gap_since_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    stream_problem: Mapped[str | None] = mapped_column(String(500), nullable=True)  # migration 0004
    updated_us: Mapped[int] = mapped_column(BigInteger)


class Gap(Base):
    """A span in which a camera delivered no footage (stream lost, never answered,
    disk full).  ``end_us`` is NULL while the gap is still open."""

    __tablename__ = "gaps"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    __table_args__ = (Index("ix_gaps_camera_start", "camera_id", "start_us"),)


class DeletionRecord(Base):
    """What a sweep deleted: never footage, never personal data."""

    __tablename__ = "deletion_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    swept_us: Mapped[int] = mapped_column(BigInteger)
    camera_id: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    segments: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))  # age, space, quota, quarantine
    __table_args__ = (Index("ix_deletion_records_swept", "swept_us"),)


class ServiceState(Base):
    """Small named facts the services share (e.g. ``janitor.last_sweep_us``)."""

    __tablename__ = "service_state"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(2000))
    updated_us: Mapped[int] = mapped_column(BigInteger)


# ---------------------------------------------------------------- access (migration 0003)


class AuditEntry(Base):
    """One entry of the append-only audit trail.  ``seq`` runs 1, 2, 3, ... without
    gaps (assigned from :class:`AuditHead` in the appending transaction);
    ``hash`` = SHA-256 over the canonical form of the entry including
    ``prev_hash`` (see storage/audit.py).  Triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at_us: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    object: Mapped[str] = mapped_column(String(255))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    client: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(String(2000))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_log_at", "at_us"),
        Index("ix_audit_log_actor", "actor", "seq"),
        Index("ix_audit_log_ticket", "ticket_id", "seq"),
        Index("ix_audit_log_action", "action", "seq"),
    )


class AuditHead(Base):
    """The single row (id 1) naming the newest audit entry.  Appending updates it
    first, which serialises appenders on SQLite and PostgreSQL alike."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class Ticket(Base):
    """An incident ticket.  ``state``: requested, approved, denied, exported,
    delivered, closed, expired (rules in vms/tickets.py).  [start_us, end_us) is
    the footage window; ``access_until_us`` the end of the access window."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(16))
    requester_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(4000))
    purpose: Mapped[str] = mapped_column(String(1000))
    legal_basis: Mapped[str] = mapped_column(String(1000))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    created_us: Mapped[int] = mapped_column(BigInteger)
    updated_us: Mapped[int] = mapped_column(BigInteger)
    decided_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"), nullable=True)
    decided_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decision_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    access_until_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    closed_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        Index("ix_tickets_state_until", "state", "access_until_us"),
        Index("ix_tickets_requester", "requester_id", "id"),
    )


class TicketCamera(Base):
    __tablename__ = "ticket_cameras"
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"), primary_key=True)


class AuthCredential(Base):
    """A sign-in session (``kind`` 'session', cookie) or an API token ('token',
    bearer).  Only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_credentials"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    expires_us: Mapped[int] = mapped_column(BigInteger)
    last_used_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_auth_credentials_user", "user_id", "kind"),)


class Delivery(Base):
    """A delivery link for an exported package (used by the export service).  Only
    hashes of the link token and passcode are stored."""

    __tablename__ = "deliveries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id"))
    package_id: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    passcode_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    expires_us: Mapped[int] = mapped_column(BigInteger)
    max_downloads: Mapped[int] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, server_default="0")
    revoked_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    created_us: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (Index("ix_deliveries_ticket", "ticket_id"),)


# ---------------------------------------------------------------- door access log (migration 0007)


class DoorlogKey(Base):
    """A door-log data key, stored only wrapped by the master key (``aad = "doorlog:" + label``): one per UTC
    day (``label`` ``day:YYYY-MM-DD``) and one per day's held entries re-sealed when that day was shredded
    (``held:YYYY-MM-DD:N``).  ``wrapped`` is NULL once shredded (docs/design/doorlog.md)."""

    __tablename__ = "doorlog_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(40), unique=True)
    day: Mapped[str] = mapped_column(String(10))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_id: Mapped[str] = mapped_column(String(16))
    created_us: Mapped[int] = mapped_column(BigInteger)
    shredded_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class DoorlogEntry(Base):
    """One passage: when, which door, and who, never in clear: ``id_sealed`` is the identifier encrypted under
    the key ``key_id`` names, ``id_hash`` a keyed hash of it under the same key (equality lookups)."""

    __tablename__ = "doorlog_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("doorlog_keys.id"))
    at_us: Mapped[int] = mapped_column(BigInteger)
    door_id: Mapped[str] = mapped_column(String(64))
    id_hash: Mapped[bytes] = mapped_column(LargeBinary)
    id_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    file_id: Mapped[int] = mapped_column(BigInteger)
    __table_args__ = (
        Index("uq_doorlog_entries_who", "id_hash", "at_us", "door_id", unique=True),
        Index("ix_doorlog_entries_door", "door_id", "at_us"),
        Index("ix_doorlog_entries_key", "key_id"),
    )


class DoorlogFile(Base):
    """A CSV file offered for import and what became of it (``imported`` or ``rejected``); ``report`` names bad
    lines by number and reason, never their identifiers."""

    __tablename__ = "doorlog_files"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(80))
    received_us: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(10))
    rows: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer)
    report: Mapped[str] = mapped_column(String(4000))
    __table_args__ = (Index("ix_doorlog_files_sha", "sha256"), Index("ix_doorlog_files_received", "received_us"))


class DoorlogDoor(Base):
    """A door seen in an imported file (tickets name doors from this list)."""

    __tablename__ = "doorlog_doors"
    door_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_us: Mapped[int] = mapped_column(BigInteger)


class DoorlogHold(Base):
    """A legal hold on one door's entries in [start_us, end_us), as :class:`Hold` is for a camera."""

    __tablename__ = "doorlog_holds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    door_id: Mapped[str] = mapped_column(String(64))
    start_us: Mapped[int] = mapped_column(BigInteger)
    end_us: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_us: Mapped[int] = mapped_column(BigInteger)
    released_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (Index("ix_doorlog_holds_door", "door_id", "start_us"),)


class TicketDoor(Base):
    """A door a ticket covers; ``id_lookup``: the ticket also allows asking when one identifier passed."""

    __tablename__ = "ticket_doors"
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    door_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id_lookup: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class ArchiveObject(Base):
    """Where a segment lives beyond its node's disk: its copy in the S3 archive (docs/design/archive.md).

    One row per segment of a node with ``[archive]``: ``state`` is ``queued`` (waiting for upload, also
    the persistent queue: ``next_try_us`` and ``attempts`` are its back-off), ``archived`` (the object
    exists; ``local`` says whether the file is also still on the node's disk) or ``expired`` (the segment
    row is gone; every version of the object is still to be deleted from the bucket).  No foreign key:
    an ``expired`` row outlives its segment.  ``held``: an S3 legal hold is on the object's versions."""

    __tablename__ = "archive_objects"
    segment_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    node_id: Mapped[str] = mapped_column(String(64))
    object_key: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(10))
    local: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    held: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_try_us: Mapped[int] = mapped_column(BigInteger)
    queued_us: Mapped[int] = mapped_column(BigInteger)
    archived_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    __table_args__ = (Index("ix_archive_objects_node_state", "node_id", "state", "next_try_us"),)


class AccessRequest(Base):
    """A ticket that answers a data subject's request of access (GDPR art. 15): when the request was received
    (the one-month deadline runs from then) and whether its export's preview was approved for delivery (by a
    manager other than the one who made it).  The ticket's holds are placed when it is filed."""

    __tablename__ = "access_requests"
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id"), primary_key=True,
                                           autoincrement=False)
    received_us: Mapped[int] = mapped_column(BigInteger)
    released_package: Mapped[str | None] = mapped_column(String(32), nullable=True)
    released_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"), nullable=True)
    released_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


# ---------------------------------------------------------------- notifications (migration 0008)


class MailOutbox(Base):
    """One e-mail to one user, written in the transaction of the event it tells of and sent later by the
    mail worker (vms/notify/sender.py).  ``event`` names the event (``ticket.waiting:12``); one mail per event
    and user.  ``state``: queued, sent, failed (given up).  ``last_error`` holds the error's class and the SMTP
    code, never a credential."""

    __tablename__ = "mail_outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(String(4000))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    created_us: Mapped[int] = mapped_column(BigInteger)
    next_attempt_us: Mapped[int] = mapped_column(BigInteger)
    sent_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    __table_args__ = (
        UniqueConstraint("event", "user_id", name="uq_mail_outbox_event_user"),
        Index("ix_mail_outbox_due", "state", "next_attempt_us"),
    )


class NoticeProblem(Base):
    """A problem administrators and auditors were mailed about (disk forecast, camera offline, retention
    violation, audit chain): open while ``cleared_us`` is NULL, so the same problem is mailed once until it
    clears."""

    __tablename__ = "notice_problems"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    message: Mapped[str] = mapped_column(String(500))
    opened_us: Mapped[int] = mapped_column(BigInteger)
    cleared_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
