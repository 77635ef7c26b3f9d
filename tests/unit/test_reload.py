"""SIGHUP re-reads the config; a bad new file keeps the running one and says why."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from storage.keys.keyring import write_key_file
from testkit.appliance import write_config
from vms.core.config import load_config
from vms.ops.reload import ConfigReloader, changed_keys

CAM = {"id": "entrance", "source": "rtsp://127.0.0.1:1/x", "retain_days": 14}


@pytest.fixture
def config_path(tmp_path):
    data = tmp_path / "data"
    path = write_config(data, [CAM])
    write_key_file(data / "keys" / "master.key")
    return path


def _rewrite(path, text_from, text_to):
    text = path.read_text()
    assert text_from in text
    path.write_text(text.replace(text_from, text_to))


def _wait(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_valid_change_is_applied(config_path):
    seen = []
    reloader = ConfigReloader(config_path, seen.append)
    _rewrite(config_path, "retain_days = 14", "retain_days = 20")
    assert reloader.reload() is True
    assert [c.cameras[0].retain_days for c in seen] == [20]
    assert reloader.config.cameras[0].retain_days == 20


def test_unchanged_file_calls_nothing(config_path):
    seen = []
    reloader = ConfigReloader(config_path, seen.append)
    assert reloader.reload() is False
    assert seen == []


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("retain_days = 14", "retain_days = 90", ["cameras[0].retain_days", "legal maximum"]),
        ('node_id = "test-node"', 'node_id = "test-node"\nfrobnicate = 1', ["frobnicate", "unknown key"]),
        ('node_id = "test-node"', 'node_id = "test-node', ["not valid TOML"]),
    ],
)
def test_invalid_change_keeps_old_config_and_says_why(config_path, caplog, old, new, words):
    seen = []
    reloader = ConfigReloader(config_path, seen.append)
    _rewrite(config_path, old, new)
    with caplog.at_level(logging.ERROR, logger="vms.ops.reload"):
        assert reloader.reload() is False
    assert seen == []
    assert reloader.config.cameras[0].retain_days == 14
    message = caplog.text
    assert "keeping the running config" in message
    assert str(config_path) in message
    for word in words:
        assert word in message


def test_unsafe_key_permissions_refused(config_path, caplog):
    reloader = ConfigReloader(config_path, lambda c: None)
    _rewrite(config_path, "retain_days = 14", "retain_days = 20")
    key = config_path.parent / "keys" / "master.key"
    os.chmod(key, 0o644)
    with caplog.at_level(logging.ERROR, logger="vms.ops.reload"):
        assert reloader.reload() is False
    assert "chmod 600" in caplog.text
    assert reloader.config.cameras[0].retain_days == 14


def test_failing_on_change_keeps_old_config(config_path, caplog):
    def boom(_cfg):
        raise RuntimeError("apply failed")

    reloader = ConfigReloader(config_path, boom)
    _rewrite(config_path, "retain_days = 14", "retain_days = 20")
    with caplog.at_level(logging.ERROR, logger="vms.ops.reload"):
        assert reloader.reload() is False
    assert reloader.config.cameras[0].retain_days == 14
    assert "keeping the running config" in caplog.text


def test_restart_keys_are_named(config_path, caplog):
    reloader = ConfigReloader(config_path, lambda c: None)
    _rewrite(config_path, 'node_id = "test-node"', 'node_id = "other-node"')
    with caplog.at_level(logging.INFO, logger="vms.ops.reload"):
        assert reloader.reload() is True
    assert "node_id take effect only after a restart" in caplog.text


def test_camera_changes_need_no_restart_and_sources_are_never_logged(config_path, caplog):
    reloader = ConfigReloader(config_path, lambda c: None)
    _rewrite(config_path, "rtsp://127.0.0.1:1/x", "rtsp://viewer:pw-in-url@127.0.0.1:2/y")
    with caplog.at_level(logging.INFO, logger="vms.ops.reload"):
        assert reloader.reload() is True
    assert "cameras" in caplog.text  # named as changed: the running recorder applies it (Recorder.apply)
    assert "restart" not in caplog.text
    assert "127.0.0.1:2" not in caplog.text and "pw-in-url" not in caplog.text  # a source may carry credentials
    caplog.clear()
    _rewrite(config_path, "retain_days = 14", "retain_days = 21")  # the janitor applies this while running
    with caplog.at_level(logging.INFO, logger="vms.ops.reload"):
        assert reloader.reload() is True
    assert "restart" not in caplog.text


def test_sighup_triggers_reload_and_bad_file_keeps_running(config_path, caplog):
    seen = []
    reloader = ConfigReloader(config_path, seen.append).install()
    try:
        _rewrite(config_path, "retain_days = 14", "retain_days = 21")
        os.kill(os.getpid(), signal.SIGHUP)
        assert _wait(lambda: reloader.reloads == 1)
        assert seen[-1].cameras[0].retain_days == 21

        _rewrite(config_path, "retain_days = 21", "retain_days = -3")
        with caplog.at_level(logging.ERROR, logger="vms.ops.reload"):
            os.kill(os.getpid(), signal.SIGHUP)
            assert _wait(lambda: reloader.refusals == 1)
        assert reloader.config.cameras[0].retain_days == 21
        assert "cameras[0].retain_days" in caplog.text
    finally:
        reloader.uninstall()
    assert signal.getsignal(signal.SIGHUP) is not reloader._on_signal


def test_changed_keys(config_path):
    a = load_config(config_path)
    assert changed_keys(a, a) == []
    b = a.model_copy(update={"legal_max_retain_days": 20})
    assert changed_keys(a, b) == ["legal_max_retain_days"]
