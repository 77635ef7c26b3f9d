"""Configuration: strict validation with messages that name file, key and what is allowed."""

from __future__ import annotations

import os

import pytest

from storage.keys.keyring import write_key_file
from vms.core.config import ConfigError, load_config, parse_config

GOOD = """
data_dir = "."
[[cameras]]
id = "entrance"
source = "rtsp://user:secret@10.0.0.10/stream1"
retain_days = 14

[[cameras]]
id = "hall-2"
source = "clips/hall.mp4"
retain_days = 30
segment_seconds = 30
"""


def write(tmp_path, text):
    os.chmod(tmp_path, 0o700)
    p = tmp_path / "vms.toml"
    p.write_text(text)
    return p


def test_good_config_and_defaults(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert [c.id for c in cfg.cameras] == ["entrance", "hall-2"]
    assert cfg.legal_max_retain_days == 30 and cfg.cameras[0].segment_seconds == 60
    assert cfg.db_url == f"sqlite:///{tmp_path.resolve() / 'index.db'}"
    assert cfg.key_path == tmp_path.resolve() / "keys" / "master.key"
    assert cfg.cameras[1].source == str(tmp_path.resolve() / "clips" / "hall.mp4")


@pytest.mark.parametrize(
    "text, key, words",
    [
        ('colour = "red"', "colour", "unknown key"),
        ('[[cameras]]\nid = "x"\nsource = "rtsp://h/x"\nretain_days = 7\nfps = 3', "cameras[0].fps", "unknown key"),
        ('[[cameras]]\nid = "x"\nsource = "rtsp://h/x"\nretain_dayz = 7', "cameras[0].retain_dayz",
         "; allowed here: enabled, id, "),
        ('[recorder]\nbackoff = 2', "recorder.backoff", "allowed here: backoff_initial_s, backoff_max_s"),
        ('[[cameras]]\nid = "../etc"\nsource = "rtsp://h/x"\nretain_days = 7', "cameras[0].id", "URL/path safe"),
        ('[[cameras]]\nid = "Cam 1"\nsource = "rtsp://h/x"\nretain_days = 7', "cameras[0].id", "lower-case"),
        ('[[cameras]]\nid = "a"\nsource = "rtsp://h/x"\nretain_days = 45', "cameras[0].retain_days", "legal maximum of 30"),
        ('[[cameras]]\nid = "a"\nsource = "rtsp://h/x"\nretain_days = 0', "cameras[0].retain_days", "greater than or equal to 1"),
        ('[[cameras]]\nid = "a"\nsource = "gopher://h/x"\nretain_days = 7', "cameras[0].source", "not supported"),
        ('[[cameras]]\nid = "a"\nsource = "rtsp://h/x"\nretain_days = 7\n[[cameras]]\nid = "a"\nsource = "rtsp://h/y"\nretain_days = 7',
         "cameras[1].id", "used twice"),
        ('[[cameras]]\nid = "a"\nsource = "rtsp://h/x"\nretain_days = 45\nlegal_max_override = { reason = "x" }',
         "cameras[0].legal_max_override.reason", "at least 20 characters"),
        ("legal_max_retain_days = 'thirty'", "legal_max_retain_days", "valid integer"),
        ("cameras = [", "", "not valid TOML"),
        ('database_url = "mysql://root:hunter2@db/vms"', "database_url", "allowed schemes: sqlite, postgresql"),
        ('database_url = "index.db"', "database_url", "sqlite:///PATH"),
    ],
)
def test_bad_config_names_file_key_and_rule(tmp_path, text, key, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg and words in msg
    assert exc.value.key == key
    assert "hunter2" not in msg


def test_override_with_written_reason_is_accepted():
    cfg = parse_config(
        '[[cameras]]\nid = "a"\nsource = "rtsp://h/x"\nretain_days = 45\n'
        'legal_max_override = { reason = "Police request 2026-113 to keep the car park camera 45 days" }'
    )
    assert cfg.cameras[0].retain_days == 45


def test_key_file_readable_by_group_is_refused(tmp_path):
    path = write(tmp_path, GOOD)
    write_key_file(tmp_path / "keys" / "master.key")
    os.chmod(tmp_path / "keys" / "master.key", 0o640)
    with pytest.raises(ConfigError, match=r"key_file: .*0640.*chmod 600"):
        load_config(path)


def test_storage_root_writable_by_others_is_refused(tmp_path):
    path = write(tmp_path, GOOD)
    (tmp_path / "segments").mkdir(mode=0o777)
    os.chmod(tmp_path / "segments", 0o777)
    with pytest.raises(ConfigError, match="storage_root: .*writable by group or others"):
        load_config(path)


def test_key_dir_writable_by_group_is_refused(tmp_path):
    path = write(tmp_path, GOOD)
    (tmp_path / "keys").mkdir()
    os.chmod(tmp_path / "keys", 0o770)
    with pytest.raises(ConfigError, match="key directory .* writable by group or others"):
        load_config(path)


def test_key_inside_storage_root_is_refused(tmp_path):
    path = write(tmp_path, GOOD + '\n')
    text = 'key_file = "segments/master.key"\n' + GOOD
    path.write_text(text)
    with pytest.raises(ConfigError, match="inside the storage root"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_deployed_example_config_is_valid():
    from pathlib import Path

    example = Path(__file__).parents[2] / "deploy" / "vms.example.toml"
    cfg = parse_config(example.read_text(), example)
    assert {c.id: c.retain_days for c in cfg.cameras} == {"entrance": 14, "reading-room": 30}


CLUSTER = GOOD.replace('data_dir = "."', 'data_dir = "."\n[cluster]\nsecret_file = "keys/cluster.secret"\n'
                       'peers = { "api-1" = "http://10.0.0.10:8080" }\n')


def test_cluster_secret_must_exist_and_be_private(tmp_path):
    from vms.ops.cluster import write_new_secret

    path = write(tmp_path, CLUSTER)
    write_key_file(tmp_path / "keys" / "master.key")
    with pytest.raises(ConfigError, match=r"cluster.secret_file: .*does not exist"):
        load_config(path)
    write_new_secret(tmp_path / "keys" / "cluster.secret")
    assert load_config(path).cluster.peers == {"api-1": "http://10.0.0.10:8080"}
    os.chmod(tmp_path / "keys" / "cluster.secret", 0o644)
    with pytest.raises(ConfigError, match=r"cluster.secret_file: .*0644.*chmod 600"):
        load_config(path)


@pytest.mark.parametrize("peers, words", [
    ('{ "api-1" = "http://u:p@10.0.0.10:8080" }', "no path or credentials"),
    ('{ "api-1" = "http://10.0.0.10:8080/x" }', "no path or credentials"),
    ('{ "API 1" = "http://10.0.0.10" }', "lower-case"),
])
def test_bad_cluster_peers_are_refused(peers, words):
    text = CLUSTER.replace('{ "api-1" = "http://10.0.0.10:8080" }', peers)
    with pytest.raises(ConfigError, match=words) as err:
        parse_config(text, "vms.toml")
    assert "u:p" not in str(err.value)  # credentials in a peer URL are never echoed


def test_node_signatures():
    from vms.ops.cluster import ClusterAuthError, sign, verify

    secret = b"s" * 40
    headers = sign(secret, "GET", "/internal/segments/7", "api-1", now_s=1000)
    assert verify(secret, "GET", "/internal/segments/7", headers, now_s=1030) == "api-1"
    for bad in (lambda: verify(secret, "GET", "/internal/segments/8", headers, now_s=1000),  # other segment
                lambda: verify(b"t" * 40, "GET", "/internal/segments/7", headers, now_s=1000),  # other secret
                lambda: verify(secret, "GET", "/internal/segments/7", headers, now_s=1061),  # too old
                lambda: verify(secret, "GET", "/internal/segments/7", {}, now_s=1000)):  # unsigned
        with pytest.raises(ClusterAuthError):
            bad()
