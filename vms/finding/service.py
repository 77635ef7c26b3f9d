"""What the API asks of finding: activity, thumbnails and searches of one ticket's camera.

:class:`Finding` is built once per appliance (``Appliance.finding``) and holds what lives as long as the
process: the thumbnail cache, the recomputed levels of held segments and the searches with their workers.
Activity and thumbnails are not audited per request (a page shows hundreds); a refusal is.
"""

from __future__ import annotations

from vms.finding import gate, timeline
from vms.finding.search import Region, Search, Searches
from vms.finding.thumbs import Thumb, ThumbCache, thumbnail


class Finding:
    def __init__(self, app):
        self.app = app
        self.thumbs = ThumbCache()
        self.held = timeline.HeldLevels()
        self.searches = Searches(app)

    def activity(self, principal, ticket_id: int, camera_id: str, start_us: int | None, end_us: int | None,
                 step_s: int = 1) -> tuple[int, int, list[int | None]]:
        """(start, end, levels) of the camera over the span (default: the ticket's window)."""
        sc = gate.scope(self.app, principal, ticket_id)
        start_us = sc.start_us if start_us is None else start_us
        end_us = sc.end_us if end_us is None else end_us
        timeline.check_steps(start_us, end_us, step_s)
        gate.authorize(self.app, principal, ticket_id, camera_id, start_us, end_us, action="footage.activity")
        return start_us, end_us, timeline.levels(self.app, camera_id, start_us, end_us, step_s, self.held)

    def thumbnail(self, principal, ticket_id: int, camera_id: str, at_us: int) -> Thumb:
        return thumbnail(self.app, principal, ticket_id, camera_id, at_us, self.thumbs)

    def search(self, principal, ticket_id: int, camera_id: str, region: Region, start_us: int | None,
               end_us: int | None) -> Search:
        return self.searches.start(principal, ticket_id, camera_id, region, start_us, end_us)

    def close(self) -> None:
        self.searches.shutdown()
        self.thumbs.clear()
