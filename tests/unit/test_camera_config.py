"""A camera's keys as ``vms config check`` validates them (name, place, source credentials), and the pieces of
the administrator's camera form that need no disk: credentials taken apart and put back, what an audit entry
says changed, which form field a config-check key belongs to."""

from __future__ import annotations

import pytest

from vms.core.camera_config import CameraConfig, split_credentials, with_credentials
from vms.core.config import ConfigError, parse_config
from vms.ops.camera_admin import _describe, _field_of, form_values

BASE = 'node_id = "n"\n'


def _config(*cameras: str):
    return parse_config(BASE + "".join(f"[[cameras]]\n{c}\n" for c in cameras), "vms.toml")


def _cam(extra: str = "", cam_id: str = "entrance") -> str:
    return f'id = "{cam_id}"\nsource = "rtsp://10.0.0.1/s"\nretain_days = 14\n{extra}'


def test_name_and_place_are_optional_and_shown_instead_of_the_id():
    cfg = _config(_cam(), _cam('name = "Indgang"\nplace = "Hovedindgangen"', "hall"))
    plain, named = cfg.cameras
    assert (plain.name, plain.place, plain.display_name) == (None, "", "entrance")
    assert (named.name, named.place, named.display_name) == ("Indgang", "Hovedindgangen", "Indgang")


@pytest.mark.parametrize("extra, key, words", [
    ('name = ""', "cameras[0].name", "at least 1 character"),
    (f'name = "{"x" * 81}"', "cameras[0].name", "at most 80 characters"),
    ('name = "Ind\\tgang"', "cameras[0].name", "control characters"),
    ('name = " Indgang"', "cameras[0].name", "spaces"),
    (f'place = "{"x" * 121}"', "cameras[0].place", "at most 120 characters"),
    ('place = "1. sal\\n"', "cameras[0].place", "control characters"),
    ('nme = "Indgang"', "cameras[0].nme", "unknown key"),
])
def test_bad_names_and_places_are_refused_naming_file_and_key(extra, key, words):
    with pytest.raises(ConfigError) as err:
        _config(_cam(extra))
    assert err.value.key == key
    assert str(err.value).startswith(f"vms.toml: {key}: ") and words in str(err.value)


def test_two_cameras_with_the_same_name_and_place_are_refused():
    with pytest.raises(ConfigError) as err:
        _config(_cam('name = "Indgang"'), _cam('name = "Indgang"', "hall"))
    assert err.value.key == "cameras[1].name" and "'entrance' already has the name 'Indgang'" in str(err.value)
    cfg = _config(_cam('name = "Indgang"\nplace = "Nord"'), _cam('name = "Indgang"\nplace = "Syd"', "hall"))
    assert len(cfg.cameras) == 2


def test_a_name_equal_to_another_cameras_id_counts_as_the_same_name():
    with pytest.raises(ConfigError):
        _config(_cam(), _cam('name = "entrance"', "hall"))


@pytest.mark.parametrize("source, expected", [
    ("rtsp://viewer:p%40ss@10.0.0.1:554/s1", ("rtsp://10.0.0.1:554/s1", "viewer", "p@ss")),
    ("rtsp://viewer@10.0.0.1/s1", ("rtsp://10.0.0.1/s1", "viewer", None)),
    ("rtsp://10.0.0.1/s1", ("rtsp://10.0.0.1/s1", None, None)),
    ("/var/lib/clips/demo.mp4", ("/var/lib/clips/demo.mp4", None, None)),
])
def test_credentials_are_taken_apart(source, expected):
    assert split_credentials(source) == expected


def test_credentials_are_put_back_percent_encoded_and_round_trip():
    url = with_credentials("rtsp://10.0.0.1:554/s1", "vis ning", "p@ss:word/1")
    assert url == "rtsp://vis%20ning:p%40ss%3Aword%2F1@10.0.0.1:554/s1"
    assert split_credentials(url) == ("rtsp://10.0.0.1:554/s1", "vis ning", "p@ss:word/1")
    assert with_credentials("rtsp://old:pw@10.0.0.1/s", "new", None) == "rtsp://new@10.0.0.1/s"
    assert with_credentials("rtsp://10.0.0.1/s", None, "pw") == "rtsp://10.0.0.1/s"  # no user: unchanged


def test_the_form_never_gets_the_credentials():
    cam = CameraConfig(id="entrance", source="rtsp://viewer:secret@10.0.0.1/s", retain_days=14)
    values = form_values(cam)
    assert values["source"] == "rtsp://10.0.0.1/s" and values["has_credentials"] is True
    assert "secret" not in repr(values) and "viewer" not in repr(values)


def test_what_changed_names_the_credentials_never_their_value():
    before = {"id": "e", "source": "rtsp://a:one@10.0.0.1/s", "retain_days": 14}
    assert _describe(before, before | {"source": "rtsp://a:two@10.0.0.1/s"}) == {"credentials": "changed"}
    assert _describe(before, before | {"source": "rtsp://10.0.0.2/s"}) == {"source": "rtsp://10.0.0.2/s",
                                                                          "credentials": "removed"}
    assert _describe({"id": "e"}, {"id": "e", "source": "rtsp://a:one@10.0.0.1/s", "name": "Indgang"}) == {
        "source": "rtsp://10.0.0.1/s", "credentials": "set", "name": "Indgang"}
    assert _describe(before, before | {"enabled": False}) == {"enabled": False}


@pytest.mark.parametrize("key, position, field", [
    ("cameras[2].retain_days", 2, "retain_days"),
    ("cameras[2].legal_max_override", 2, "retain_days"),
    ("cameras[2].source", 2, "source"),
    ("cameras[1].name", 2, ""),  # another camera's problem: shown for the whole form
    ("storage_root", 2, ""),
    ("", 0, ""),
])
def test_a_config_check_key_is_shown_at_its_form_field(key, position, field):
    assert _field_of(key, position) == field
