"""The [mail] section: validated like the rest, errors naming the key; the password file must be private."""

from __future__ import annotations

import os

import pytest

from vms.core.config import ConfigError, load_config

BASE = '[mail]\nhost = "smtp.library.example"\nsender = "Videoarkiv <cctv@library.example>"\n' \
       'public_url = "https://cctv.library.example"\n'


def write(tmp_path, text):
    os.chmod(tmp_path, 0o700)
    p = tmp_path / "vms.toml"
    p.write_text(text)
    return p


def test_good_mail_config_and_defaults(tmp_path):
    secret = tmp_path / "smtp.password"
    secret.write_text("hunter2\n")
    os.chmod(secret, 0o600)
    cfg = load_config(write(tmp_path, BASE + 'username = "cctv"\npassword_file = "smtp.password"\n'))
    m = cfg.mail
    assert (m.port, m.security, m.reminder_hours, m.escalation_hours, m.offline_minutes) == (587, "starttls", 4, 24, 30)
    assert m.password_file == secret.resolve()
    # plain SMTP to a relay on this machine is fine; the link base falls back to delivery.public_url
    cfg = load_config(write(tmp_path, '[delivery]\npublic_url = "https://x.example"\n[mail]\nhost = "127.0.0.1"\n'
                                      'port = 25\nsecurity = "none"\nsender = "cctv@x.example"\n'))
    assert cfg.mail.public_url is None and cfg.delivery.public_url == "https://x.example"


@pytest.mark.parametrize("extra, key, words", [
    ('security = "none"\n', "mail.security", "allowed only to a loopback host"),
    ('security = "ssl"\n', "mail.security", "'starttls', 'tls' or 'none'"),
    ('port = 0\n', "mail.port", "greater than or equal to 1"),
    ('reminder_hours = 30\n', "mail.escalation_hours", "must be longer than reminder_hours (30)"),
    ('username = "cctv"\n', "mail.password_file", "go together"),
    ('password = "hunter2"\n', "mail.password", "unknown key"),
    ('offline_minutes = 0\n', "mail.offline_minutes", "greater than or equal to 1"),
])
def test_bad_mail_config_names_the_key(tmp_path, extra, key, words):
    path = write(tmp_path, BASE + extra)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.key == key and words in str(exc.value), str(exc.value)
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("text, key, words", [
    ('[mail]\nhost = "smtp example"\nsender = "a@b.dk"\npublic_url = "https://x.dk"\n', "mail.host",
     "not a host name"),
    ('[mail]\nhost = "smtp.x.dk"\nsender = "nobody"\npublic_url = "https://x.dk"\n', "mail.sender",
     "must look like name@example.dk"),
    ('[mail]\nhost = "smtp.x.dk"\nsender = "a@b.dk"\npublic_url = "ftp://x.dk"\n', "mail.public_url", "http(s)://"),
    ('[mail]\nhost = "smtp.x.dk"\nsender = "a@b.dk"\n', "mail", "public_url: mails link to the web UI"),
    ('[mail]\nsender = "a@b.dk"\npublic_url = "https://x.dk"\n', "mail.host", "Field required"),
])
def test_bad_mail_values(tmp_path, text, key, words):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert exc.value.key == key and words in str(exc.value), str(exc.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_password_file_readable_by_others_is_refused(tmp_path, mode):
    secret = tmp_path / "smtp.password"
    secret.write_text("hunter2\n")
    os.chmod(secret, mode)
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, BASE + 'username = "cctv"\npassword_file = "smtp.password"\n'))
    assert exc.value.key == "mail.password_file" and f"mode {mode:04o}" in str(exc.value)
    assert "chmod 600" in str(exc.value) and "hunter2" not in str(exc.value)


def test_missing_password_file_is_refused(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, BASE + 'username = "cctv"\npassword_file = "nope"\n'))
    assert exc.value.key == "mail.password_file" and "does not exist" in str(exc.value)
