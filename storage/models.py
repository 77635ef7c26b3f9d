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
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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


class DayKey(Base):
    """One data key per camera per UTC day, stored only wrapped.  ``wrapped`` is
    NULL once shredded."""

    __tablename__ = "day_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(String(64), ForeignKey("cameras.id"))
    day: Mapped[str] = mapped_column(String(10))
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_id: Mapped[str] = mapped_column(String(16))
    created_us: Mapped[int] = mapped_column(BigInteger)
    shredded_us: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (UniqueConstraint("camera_id", "day", name="uq_day_keys_camera_day"),)


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
    """A held segment's own key, wrapped by the master key; survives the day-key shred."""

    __tablename__ = "segment_keys"
    segment_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    master_id: Mapped[str] = mapped_column(String(16))


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
