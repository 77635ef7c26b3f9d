"""Reading archived segments back: playback and export on any node, also when the recording node is down.

:func:`install` sets ``app.store.archive_fetch`` (``storage/store.py`` asks it when a segment's file is
not on this node's disk): the index says whether and under which key the segment is archived; the object
is fetched (still encrypted) with one GET, its length checked against the index, and decrypted in memory
by the store's reader with the shared master key.  No plaintext is written anywhere.

One GET per segment, no ranged reads yet (the segment reader takes the whole file's bytes):
docs/design/archive.md says what that costs and where ranged reads would help.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from storage.objectstore import ObjectStore, StoreError
from storage.sql import archive_queries as aq
from storage.sql.index import SegmentRef
from storage.store import SegmentUnavailable
from vms.archive.bucket import open_store


class ArchiveFetch:
    def __init__(self, engine, store: ObjectStore):
        self.engine, self.store = engine, store

    def __call__(self, ref: SegmentRef) -> bytes | None:
        with Session(self.engine) as s:
            loc = aq.location(s, ref.id)
        if loc is None or loc.state != "archived":
            return None
        try:
            data = self.store.get(loc.object_key)
        except StoreError as exc:
            raise SegmentUnavailable(ref.path, f"the archive cannot give it: {exc}") from None
        if len(data) != ref.size_bytes:
            raise SegmentUnavailable(ref.path, f"the archive holds {len(data)} bytes, the index says {ref.size_bytes}")
        return data


def install(app, store: ObjectStore | None = None) -> None:
    """Let ``app.store`` read archived segments when ``[archive]`` is configured."""
    if app.config.archive is None:
        return
    app.store.archive_fetch = ArchiveFetch(app.engine, store or open_store(app.config.archive))
