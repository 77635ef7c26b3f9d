"""The names people read for cameras: display name and place, from the index (every node's cameras).

Cameras are identified by their id everywhere inside (paths, the index, the API, the audit trail); people
read the camera's ``name`` and ``place`` instead (config keys, mirrored into the index by
``Appliance.sync_cameras`` so that any node names any camera of the cluster).  :func:`camera_names` reads
them once; :class:`CameraName` gives what a page or a manifest shows.  A camera the index does not know (or
one without a name) is shown by its id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from storage.sql import index


@dataclass(frozen=True)
class CameraName:
    id: str
    name: str | None = None
    place: str = ""

    @property
    def display(self) -> str:
        return self.name or self.id

    @property
    def label(self) -> str:
        """``Name (place)``, or the name alone, or the id."""
        return f"{self.display} ({self.place})" if self.place else self.display


class CameraNames:
    """Every camera's name, read from the index on first use (one query per page or export)."""

    def __init__(self, engine):
        self._engine = engine
        self._names: dict[str, CameraName] | None = None

    def _all(self) -> dict[str, CameraName]:
        if self._names is None:
            with Session(self._engine) as s:
                self._names = {i: CameraName(i, n, p or "") for i, n, p in index.camera_names(s)}
        return self._names

    def __getitem__(self, camera_id: str) -> CameraName:
        return self._all().get(camera_id) or CameraName(camera_id)

    def label(self, camera_id: str) -> str:
        return self[camera_id].label

    def labels(self, camera_ids) -> str:
        return ", ".join(self.label(c) for c in camera_ids)
