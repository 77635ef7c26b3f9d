"""The door log in an evidence package: ``doorlog/doorlog.csv`` beside the clips (docs/design/doorlog.md).

One line per passage at the ticket's doors in its window, oldest first: ``time_utc,time_local,door,kind,
identifier`` (UTF-8, comma-separated, RFC 4180 quoting).  The file is listed in manifest.json with its SHA-256
(and in SHA256SUMS), so both signatures cover it as they cover the clips; the manifest's ``doorlog`` section
names the doors, the window and how many passages.  The identifiers are in clear here on purpose: the package
is the evidence the ticket was approved for, and it is stored encrypted until it is delivered.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

PATH = "doorlog/doorlog.csv"
HEADER = ("time_utc", "time_local", "door", "kind", "identifier")


@dataclass(frozen=True)
class DoorlogExtract:
    """What of the door log goes into the package (read under the ticket by vms.doorlog.lookup.for_export)."""

    doors: tuple[str, ...]
    start_us: int
    end_us: int
    passages: tuple  # vms.doorlog.lookup.PassageView


def csv_bytes(extract: DoorlogExtract, times) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(HEADER)
    for p in extract.passages:
        point = times.point(p.at_us)
        w.writerow((point["utc"], point["local"], p.door_id, p.kind, p.identifier))
    return out.getvalue().encode("utf-8")


def manifest_section(extract: DoorlogExtract, times) -> dict:
    return {
        "file": PATH,
        "doors": list(extract.doors),
        "window": {"start": times.point(extract.start_us), "end": times.point(extract.end_us)},
        "passages": len(extract.passages),
        "columns": list(HEADER),
        "note": "Every passage the door log held at these doors in the window when the package was made; kind is "
                "cpr (a CPR number) or card (a card number).",
    }


def readme_lines(extract: DoorlogExtract) -> bytes:
    return (f"\nADGANGSLOG / DOOR ACCESS LOG\n  {PATH}: {len(extract.passages)} passager/passages, "
            f"døre/doors: {', '.join(extract.doors)}\n  Filen er dækket af manifest.json og SHA256SUMS og dermed "
            "af begge signaturer. / The file is covered by manifest.json and SHA256SUMS, hence by both "
            "signatures.\n").encode()
