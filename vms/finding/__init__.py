"""Finding the incident inside an approved ticket: activity levels, keyframe thumbnails, region search.

Everything here is gated by the one access policy (:mod:`vms.finding.gate`) and reads footage only inside
the ticket's cameras and window.  Design: docs/design/finding.md.
"""
