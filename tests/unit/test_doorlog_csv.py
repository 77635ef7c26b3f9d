"""Reading door controllers' CSV files (pure): the documented format, vendor mappings, every problem named by
line and reason and never by the value in it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from vms.core.doorlog_config import DoorlogConfig
from vms.doorlog import csvfile

NOW = 1_767_312_000_000_000  # 2026-01-02T00:00:00Z
CPH = ZoneInfo("Europe/Copenhagen")


def parse(text: str | bytes, **cfg):
    data = text.encode() if isinstance(text, str) else text
    return csvfile.parse(data, DoorlogConfig(inbox="in", **cfg), tz=CPH, now_us=NOW)


def test_the_documented_format():
    p = parse("\ufefftime,door,id\n2026-01-01T21:04:05+01:00,main,310771-9876\n2026-01-01T20:05:00Z,side,card12\n\n")
    assert p.ok and p.lines == 2
    assert [(x.at_us, x.door_id, x.identifier) for x in p.passages] == [
        (1_767_297_845_000_000, "main", b"cpr:3107719876"), (1_767_297_900_000_000, "side", b"card:CARD12")]
    assert csvfile.display_identifier(b"cpr:3107719876") == "310771-9876"


def test_a_vendor_mapping_windows_1252_semicolons_local_time():
    data = "Tidspunkt;Dør;CPR-nr.\r\n01-01-2026 22:04:05;Hoveddør;3107719876\r\n".encode("cp1252")
    p = parse(data, delimiter=";", encoding="windows-1252", time_format="%d-%m-%Y %H:%M:%S",
              columns={"time": "tidspunkt", "door": "DØR", "id": "CPR-nr."})
    assert p.ok, p.report()
    assert (p.passages[0].at_us, p.passages[0].door_id) == (1_767_301_445_000_000, "Hoveddør")  # 21:04:05Z


def test_every_bad_line_is_named_without_its_value_and_nothing_is_kept():
    p = parse("time,door,id\n"
              "2026-01-01T21:00:00+01:00,main,310771-9876\n"   # 2: fine
              "3107719876,main,card1\n"                        # 3: a CPR number in the time column
              "2026-01-01T21:00:00,main,card1\n"               # 4: no offset
              "2026-01-01T21:00:00Z,main door!,card1\n"        # 5: bad door
              "2026-01-01T21:00:00Z,main,12\n"                 # 6: neither CPR nor card
              "2026-01-03T21:00:00Z,main,card1\n"              # 7: the future
              "2026-01-01T21:00:00Z,main\n")                   # 8: too few fields
    assert not p.ok and p.passages == []
    assert [n for n, _ in p.problems] == [3, 4, 5, 6, 7, 8]
    report = p.report()
    assert "line 3: time: not an ISO 8601 time" in report and "line 7: time: lies in the future" in report
    assert "3107719876" not in report and "310771" not in report and "main door!" not in report


def test_file_level_problems():
    assert "the file is empty" in parse("").report()
    assert "is the delimiter ',' right?" in parse("time;door;id\n2026-01-01T21:00:00Z;main;card1\n").report()  # wrong delimiter
    assert "has a header but no passages" in parse("time,door,id\n").report()
    assert "not valid utf-8 text" in parse("time,door,id\n2026-01-01T21:00:00Z,d\xf8r,card1\n".encode("cp1252")).report()
    assert "line 2" in parse('time,door,id\n2026-01-01T21:00:00Z,"main,card1\n').report()  # unbalanced quote


def test_more_problems_than_shown_are_counted():
    lines = "".join("x,main,card1\n" for _ in range(60))
    report = parse("time,door,id\n" + lines).report()
    assert "line 51" in report and "line 52" not in report and "and 10 more line(s)" in report


def test_times_read_by_the_hour_agree_with_datetime_line_by_line():
    """The ISO 8601 reader parses each distinct date, hour and offset once and adds minutes and seconds; every
    value, good or bad, must come out as ``datetime.fromisoformat`` reads it on its own."""
    read = csvfile._TimeReader("iso8601", CPH)
    values = [f"2026-{m:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{off}"
              for m, d in ((1, 1), (3, 29), (2, 30), (10, 25), (13, 1)) for sep in "T "
              for h in (0, 2, 23, 24) for mi, s in ((0, 0), (59, 59), (7, 60), (60, 1))
              for off in ("+01:00", "Z", "-00:00", "+0200", "+01:00:30", "", "+24:00", ".5+01:00", "+1")]
    values += ["2026-01-01T01:0a:03+01:00", "2026-01-01T01:\u00b2\u00b3:03+01:00", "2026-01-01T01:00:03+01:00junk",
               "20260101T010003+0100", "2026-01-01T01:00:03,25Z", "2026-W01-1T01:00:03Z"]
    for v in values * 2:  # the second round is answered from the reader's hours
        assert read(v) == read._parse(v), v
    assert read("2026-01-01T21:04:05+01:00") == 1_767_297_845_000_000
    assert "no UTC offset" in read("2026-01-01T21:00:00")
