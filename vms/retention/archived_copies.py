"""The janitor's part of the archive tier: local copies of archived segments (docs/design/archive.md).

Part of :class:`vms.retention.janitor.Janitor` (expects ``app``, ``root``, ``node``, ``batch``, ``_observer``
and ``_own_deletions``).  A segment safely archived (the store confirmed the upload) keeps its local file
for ``[archive] keep_local_days`` after it ended; then, and earlier when the disk is below its floor, the
row is marked archive-only first and the file unlinked second, so a crash between the two leaves a file the
janitor removes again, never a row that claims a local file that is gone.  Footage that exists only in the
archive is not evicted for quota or space (deleting it frees nothing here); age still deletes it, and the
archive worker then deletes its object.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from sqlalchemy.orm import Session

from storage.sql import archive_queries as aq
from storage.sql.index import SegmentRef
from vms.retention import layout
from vms.retention import rules as retention

log = logging.getLogger("vms.retention.janitor")


class ArchivedCopies:

    def drop_archived_copies(self, now_us: int, *, need_bytes: int | None = None) -> int:
        """Remove local files of archived segments: those older than ``keep_local_days`` (``need_bytes``
        None), or the oldest archived ones until ``need_bytes`` are freed.  Returns the bytes freed."""
        cfg = self.app.config.archive
        if cfg is None:
            return 0
        cutoff = now_us if need_bytes is not None else now_us - cfg.keep_local_days * retention.DAY_US
        freed = 0
        while need_bytes is None or freed < need_bytes:
            with Session(self.app.engine) as s:
                due = aq.local_copies_due(s, self.node, ended_before_us=cutoff, limit=self.batch)
            if not due:
                break
            with Session(self.app.engine) as s, s.begin():
                aq.mark_local_gone(s, [i for i, _p in due])
            for _id, rel in due:
                path = layout.safe_abspath(self.root, rel)
                if path is None:
                    continue
                if self._observer is not None:
                    self._own_deletions.add(rel)
                try:
                    size = path.stat().st_size
                    path.unlink()
                    freed += size
                except FileNotFoundError:
                    pass
            if len(due) < self.batch:
                break
        if freed:
            log.info("archive: removed %.1f MB of local copies of archived segments", freed / 1e6)
        return freed

    def _local_only(self, refs: Iterator[SegmentRef]) -> Iterator[SegmentRef]:
        """``refs`` without the segments whose only copy is in the archive (page by page)."""
        if self.app.config.archive is None:
            yield from refs
            return
        page: list[SegmentRef] = []
        for ref in refs:
            page.append(ref)
            if len(page) >= 200:
                yield from self._filter(page)
                page = []
        yield from self._filter(page)

    def _filter(self, page: list[SegmentRef]) -> list[SegmentRef]:
        if not page:
            return page
        with Session(self.app.engine) as s:
            remote = aq.archive_only(s, [r.id for r in page])
        return [r for r in page if r.id not in remote]
