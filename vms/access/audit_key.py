"""The audit key: what makes the trail a keyed chain that someone with only the database cannot extend.

Each entry's hash is HMAC-SHA256 under this key (:mod:`storage.sql.audit`), so appending, inserting
or rewriting entries that verify needs the key, not just write access to the database.  The key is
32 random bytes made once per trail, the first time an appliance opens the database, and stored in
the database only wrapped by the master key (``service_state`` row ``audit.mac_key``: JSON with the
wrapped key, the master key's id and ``keyed_from``, the first entry sealed with it).  So every node
holding the shared master key has it, a database dump alone does not, and ``vms keys rotate``
re-wraps it with the other keys (:func:`rewrap`).

A new trail is sealed from entry 1.  A trail that existed before the key (upgraded appliances) is
migrated by the entry that announces the key (``audit.key``, the first sealed entry): "entries 1..N
were chained without a key; from this entry on every entry is sealed".  Verification then requires exactly that: plain SHA-256 before
``keyed_from``, the key from there on (:func:`vms.access.audit.check_chain`), and the signed
checkpoint outside the database repeats ``keyed_from`` so the boundary cannot be moved either.

Processes find the key of their database through :func:`key_for` (registered by
:meth:`vms.appliance.Appliance.open`); a process that never opened the appliance has none and
writes plain entries, which verification names as not sealed.
"""

from __future__ import annotations

import json
import logging
import os
import weakref
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.keys.keyring import KeyError_, MasterKeyring, unwrap, wrap
from storage.sql import audit as store
from storage.sql.db import open_database

log = logging.getLogger(__name__)

PURPOSE = "audit-mac-key"
KEY_BYTES = 32
ACTION = "audit.key"

_registry: weakref.WeakKeyDictionary[Engine, MacKey] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class MacKey:
    key: bytes
    keyed_from: int  # the first entry sealed with the key


class RecordError(Exception):
    """The stored record of the audit key cannot be used (damaged, or not unwrappable)."""


def parse_record(value: str) -> dict:
    """The record's fields, checked; RecordError names what is wrong."""
    try:
        doc = json.loads(value)
        wrapped, master_id, keyed_from = bytes.fromhex(doc["wrapped"]), doc["master_id"], doc["keyed_from"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RecordError("the audit key's record (service_state 'audit.mac_key') is damaged") from None
    if type(keyed_from) is not int or keyed_from < 1 or not isinstance(master_id, str):
        raise RecordError("the audit key's record (service_state 'audit.mac_key') is damaged")
    return {"wrapped": wrapped, "master_id": master_id, "keyed_from": keyed_from}


def ensure(engine: Engine, keyring: MasterKeyring, now_us: int) -> MacKey | None:
    """Load this trail's audit key, making it (and the entry that announces it) when there is none;
    register it for ``engine``.  None (logged) when the stored record cannot be used: appends then
    stay plain and verification names the problem."""
    try:
        with engine.connect() as conn:
            value = store.mac_key_record(conn)
        if value is None:
            _create(engine, keyring, now_us)
            with engine.connect() as conn:
                value = store.mac_key_record(conn)
        doc = parse_record(value)
        key = unwrap(keyring.get(doc["master_id"]), doc["wrapped"], PURPOSE)
    except (RecordError, KeyError_) as exc:
        log.error("audit trail: %s; entries are appended without the key until it is mended", exc)
        return None
    except SQLAlchemyError as exc:
        log.warning("audit trail: the audit key could not be loaded (%s)", exc.__class__.__name__)
        return None
    mac = MacKey(key, doc["keyed_from"])
    _registry[engine] = mac
    return mac


def _create(engine: Engine, keyring: MasterKeyring, now_us: int) -> None:
    """Make the key.  An empty trail is sealed from entry 1; a trail with entries gets the entry that
    announces the key (the first sealed one), which takes the chain's lock, so its seq is the boundary."""
    key = os.urandom(KEY_BYTES)
    try:
        with Session(engine) as s, s.begin():
            head = store.head(s)
            keyed_from = 1
            if head is not None and head[0] > 0:
                row = store.append(
                    s, at_us=now_us, actor="system", role="system", action=ACTION, object="trail", key=key,
                    detail=(f"entries 1..{head[0]} were chained without a key (SHA-256); from this entry on every "
                            "entry is sealed with the audit key (HMAC-SHA256), kept wrapped by the master key"),
                )
                keyed_from = row.seq
            record = {"wrapped": wrap(keyring.current, key, PURPOSE).hex(), "master_id": keyring.current_id,
                      "keyed_from": keyed_from}
            store.insert_mac_key_record(s, json.dumps(record, sort_keys=True), now_us)
    except IntegrityError:
        pass  # another process made it at the same moment: use theirs


def open_trail(cfg, now_us: int) -> Engine:
    """The configured database with this trail's audit key loaded (for commands that append entries
    without opening the whole appliance: ``vms user ...``, ``vms init``)."""
    engine = open_database(cfg.db_url)
    ensure(engine, MasterKeyring(cfg.key_path), now_us)
    return engine


def key_for(bind) -> MacKey | None:
    """The audit key registered for a session's bind (an Engine or a Connection)."""
    engine = getattr(bind, "engine", bind)
    try:
        return _registry.get(engine)
    except TypeError:
        return None


def rewrap(engine: Engine, ring: MasterKeyring, new_key: bytes, new_id: str, now_us: int) -> int:
    """Wrap the audit key under a new master key (``vms keys rotate``); returns 1, or 0 without a key."""
    with Session(engine) as s, s.begin():
        value = store.mac_key_record(s)
        if value is None:
            return 0
        doc = parse_record(value)
        if doc["master_id"] == new_id:
            return 0
        key = unwrap(ring.get(doc["master_id"]), doc["wrapped"], PURPOSE)
        record = {"wrapped": wrap(new_key, key, PURPOSE).hex(), "master_id": new_id, "keyed_from": doc["keyed_from"]}
        store.replace_mac_key_record(s, json.dumps(record, sort_keys=True), now_us)
    return 1
