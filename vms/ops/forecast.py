"""The disk forecast: will the storage disk hold every camera's retention at the rate the cameras record now?

Pure functions of plain numbers (tested without disk or clock); :func:`measure` gathers the numbers.

* ``capacity`` = free space + footage already stored here - the janitor's free-space floor: the bytes footage
  may occupy.
* Each camera fills ``rate`` bytes a day (its measured bitrate; its quota caps what it keeps) and keeps
  ``retain_days``; the retention needs ``sum(rate x retain_days)``.
* When that is more than the capacity, the disk *holds N days*: the N at which
  ``sum(rate x min(retain_days, N)) = capacity`` (cameras with a shorter retention stop growing at theirs), and a
  camera that keeps more than N days needs ``(retain_days - N) x rate`` more bytes; those add up to the
  shortfall.  Otherwise N is how long the capacity would last with every camera at its rate.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from vms.core.i18n import N_, translator

DAY_S = 86_400
MIN_SHORT_BYTES = 50e6  # a camera lacking less than this (0.0 GB in words) is not named


@dataclass(frozen=True)
class CameraUse:
    camera_id: str
    retain_days: int
    bytes_per_day: float | None  # None: no bitrate measured yet and no quota
    quota_bytes: int | None = None

    @property
    def need_bytes(self) -> float:
        if self.bytes_per_day is None:
            return float(self.quota_bytes or 0)
        need = self.bytes_per_day * self.retain_days
        return min(need, float(self.quota_bytes)) if self.quota_bytes is not None else need


@dataclass(frozen=True)
class Shortage:
    camera_id: str
    retain_days: int
    more_bytes: float


@dataclass(frozen=True)
class Forecast:
    total_bytes: int
    free_bytes: int
    floor_bytes: int
    stored_bytes: int
    capacity_bytes: float
    need_bytes: float
    days_held: float | None  # None: nothing measured yet
    short: bool
    shortages: list[Shortage] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)

    @property
    def below_floor(self) -> bool:
        return self.free_bytes < self.floor_bytes


def _days_held(cams: list[CameraUse], capacity: float) -> float:
    """N with sum(rate x min(retain_days, N)) = capacity, for cameras that record (rate > 0)."""
    rated = sorted((c for c in cams if c.bytes_per_day), key=lambda c: c.retain_days)
    used, days_done = 0.0, 0.0
    rate_left = sum(c.bytes_per_day for c in rated)
    for cam in rated:
        span = cam.retain_days - days_done
        if used + rate_left * span >= capacity:
            break
        used += rate_left * span
        days_done = cam.retain_days
        rate_left -= cam.bytes_per_day
    return days_done + (capacity - used) / rate_left if rate_left > 0 else days_done


def forecast(cams: list[CameraUse], *, total_bytes: int, free_bytes: int, floor_bytes: int,
             stored_bytes: int) -> Forecast:
    capacity = max(0.0, float(free_bytes + stored_bytes - floor_bytes))
    need = sum(c.need_bytes for c in cams)
    unmeasured = [c.camera_id for c in cams if c.bytes_per_day is None and c.quota_bytes is None]
    daily = sum(c.bytes_per_day or 0 for c in cams)
    if daily <= 0:
        return Forecast(total_bytes, free_bytes, floor_bytes, stored_bytes, capacity, need, None, need > capacity,
                        [], unmeasured)
    short = need > capacity
    if not short:
        return Forecast(total_bytes, free_bytes, floor_bytes, stored_bytes, capacity, need, capacity / daily, False,
                        [], unmeasured)
    held = _days_held(cams, capacity)
    shortages = [Shortage(c.camera_id, c.retain_days, (c.retain_days - held) * c.bytes_per_day)
                 for c in cams if c.bytes_per_day and (c.retain_days - held) * c.bytes_per_day >= MIN_SHORT_BYTES]
    return Forecast(total_bytes, free_bytes, floor_bytes, stored_bytes, capacity, need, held, True,
                    sorted(shortages, key=lambda x: -x.more_bytes), unmeasured)


def measure(app) -> Forecast | None:
    """The forecast for this node's enabled cameras from the recorder's measured bitrates and the index's
    stored bytes; None when the disk cannot be read."""
    from sqlalchemy.orm import Session

    from storage.sql import index, retention_queries
    from vms.retention import rules

    cfg = app.config
    root = cfg.storage_path
    probe = next((p for p in (root, *root.parents) if p.exists()), None)
    try:
        usage = shutil.disk_usage(probe)
    except (OSError, TypeError):
        return None
    with Session(app.engine) as s:
        rates = {st.camera_id: float(st.bitrate_bps) for st in index.camera_states(s) if st.bitrate_bps}
        stored = sum(size for _c, _n, size, _m in retention_queries.usage_by_camera(s, cfg.node_id))
    cams = [CameraUse(c.id, c.retain_days, rates[c.id] / 8 * DAY_S if c.id in rates else None, c.quota_bytes)
            for c in cfg.cameras if c.enabled]
    floor = rules.free_space_floor(usage.total, cfg.janitor.min_free_bytes, cfg.janitor.min_free_percent)
    return forecast(cams, total_bytes=usage.total, free_bytes=usage.free, floor_bytes=floor, stored_bytes=stored)


def words(f: Forecast, lang: str) -> str:
    """The forecast in a sentence or two, in ``lang`` (the ``vms`` catalog's ``forecast.*``; sizes in GB with one
    decimal as the language writes them)."""
    t = translator(lang)

    def gb(b: float) -> str:
        return t.number(b / 1e9, digits=1)

    if f.days_held is None:
        return t(N_("forecast.unmeasured"))
    if not f.short:
        return t(N_("forecast.enough")).format(need=gb(f.need_bytes), capacity=gb(f.capacity_bytes),
                                               days=f"{f.days_held:.0f}")
    parts = "; ".join(t(N_("forecast.camera_short")).format(camera=s.camera_id, days=s.retain_days,
                                                            more=gb(s.more_bytes)) for s in f.shortages)
    return t(N_("forecast.short")).format(days=f"{f.days_held:.0f}", cameras=parts)
