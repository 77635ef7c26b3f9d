"""Segment services used by the command line and the janitor."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from storage.format.segment import SegmentSummary
from storage.format.segment_reader import SegmentReader
from storage.sql import index


def verify_file(app, path: Path) -> SegmentSummary:
    """Authenticate every chunk of ``path`` with the appliance's keys (a held
    segment's own key when the index has one)."""
    segment_id = None
    try:
        rel = app.store.relpath(path)
    except ValueError:
        rel = None
    with Session(app.engine) as s:
        if rel is not None and (ref := index.segment_by_path(s, rel)) is not None:
            segment_id = ref.id
        return SegmentReader(path, app.keys.key_for_segment(s, segment_id)).summary()
