"""The ``vms`` command speaks Danish or English (vms/cli/lang.py): $VMS_LANG, else the locale, else Danish; what
scripts read (JSON, exit statuses) does not change with the language."""

from __future__ import annotations

import json

import pytest

from vms.cli import main
from vms.cli.lang import LanguageError, choose


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "da"),
    ({"LANG": "C.UTF-8"}, "da"),  # a server's usual locale names no language
    ({"LANG": "POSIX"}, "da"),
    ({"LANG": "de_DE.UTF-8"}, "da"),
    ({"LANG": "en_GB.UTF-8"}, "en"),
    ({"LANG": "da_DK.UTF-8"}, "da"),
    ({"LANG": "da_DK.UTF-8", "LC_MESSAGES": "en_US.UTF-8"}, "en"),  # the more specific one wins
    ({"LANG": "en_GB.UTF-8", "LC_ALL": "C"}, "da"),  # LC_ALL overrides everything, as in POSIX
    ({"LANG": "en_GB.UTF-8", "VMS_LANG": "da"}, "da"),
    ({"LC_ALL": "da_DK.UTF-8", "VMS_LANG": "en"}, "en"),
    ({"VMS_LANG": "en-GB"}, "en"),
    ({"VMS_LANG": " ", "LANG": "en_US"}, "en"),  # set but empty: as unset
])
def test_language_rule(environ, expected):
    assert choose(environ) == expected


def test_an_unknown_vms_lang_is_refused_with_exit_2(monkeypatch, capsys):
    with pytest.raises(LanguageError):
        choose({"VMS_LANG": "fr"})
    monkeypatch.setenv("VMS_LANG", "fr")
    assert main(["hold", "list", "--config", "/nonexistent/vms.toml"]) == 2
    err = capsys.readouterr().err
    assert "VMS_LANG='fr'" in err and "da or en" in err and "da eller en" in err


def test_errors_and_exit_statuses_in_both_languages(monkeypatch, capsys, tmp_path):
    for lang, words in (("da", "fejl i konfigurationen: "), ("en", "config error: ")):
        monkeypatch.setenv("VMS_LANG", lang)
        bad = tmp_path / "bad.toml"
        bad.write_text("cameras = 7\n")
        assert main(["config", "check", str(bad)]) == 2
        assert capsys.readouterr().err.startswith(words)
    monkeypatch.setenv("VMS_LANG", "da")
    assert main(["hold", "add", "cam", "--from", "yesterday", "--to", "2026-03-01T10:00Z", "--reason", "x" * 12,
                 "--config", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err == ("fejl: --from: 'yesterday' er ikke et tidspunkt i ISO 8601-format "
                                       "(f.eks. 2026-03-01T10:00:00Z)\n")
    monkeypatch.setenv("VMS_LANG", "en")
    assert main(["hold", "add", "cam", "--from", "2026-03-01T10:00", "--to", "2026-03-01T11:00Z", "--reason",
                 "x" * 12, "--config", str(tmp_path / "none.toml")]) == 2
    assert "'2026-03-01T10:00' has no time zone; add Z for UTC or an offset" in capsys.readouterr().err


def test_doctor_json_is_the_same_in_both_languages(monkeypatch, capsys, tmp_path):
    """Scripts read --json: its keys, statuses and exit status do not depend on the language."""
    outputs, codes = [], []
    for lang in ("da", "en"):
        monkeypatch.setenv("VMS_LANG", lang)
        codes.append(main(["doctor", "--json", "--config", str(tmp_path / "missing.toml")]))
        outputs.append(json.loads(capsys.readouterr().out))
    assert codes == [1, 1] and outputs[0] == outputs[1] and outputs[0]["checks"][0]["status"] == "fail"
    monkeypatch.setenv("VMS_LANG", "da")
    assert main(["doctor", "--config", str(tmp_path / "missing.toml")]) == 1
    text = capsys.readouterr().out
    assert "  FEJL " in text and "1 problem(er) fundet." in text


def test_doctor_numbers_and_camera_shares_in_each_language():
    from vms.core.finding_words import Num, Parts, words

    parts = Parts([("hall", Num(412.04), Num(4.0), 30), ("gate", Num(2.0), None, 14)])
    assert parts.shown("en") == "hall 412.0 GB (4.0 Mbit/s x 30 d); gate 2.0 GB (quota)"
    assert parts.shown("da") == "hall 412,0 GB (4,0 Mbit/s x 30 d); gate 2,0 GB (kvote)"
    assert Num(1234.5, 0).shown("da") == "1234" and Num(0.25, None).shown("da") == "0,25"  # never grouped
    assert words("doctor.janitor.ok", {"seconds": Num(12.4, 0)}, "da") == "seneste gennemløb for 12 s siden"


def test_help_in_both_languages(monkeypatch, capsys):
    monkeypatch.setenv("VMS_LANG", "da")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "Anlæg til opbevaring af videooptagelser" in text
    assert "opret konfiguration, nøgler" in text and "log detaljer til fejlsøgning" in text
    monkeypatch.setenv("VMS_LANG", "en")
    with pytest.raises(SystemExit):
        main(["hold", "add", "--help"])
    text = capsys.readouterr().out
    assert "why the footage must" in text and "config file (default:" in text
    monkeypatch.setenv("VMS_LANG", "da")
    with pytest.raises(SystemExit):
        main(["doctor", "--help"])
    assert "udelad kontroller" in capsys.readouterr().out
