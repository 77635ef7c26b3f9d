"""The ``[delivery]`` section of the config sets the link limits the API applies."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.support.api_env import make_api_env
from tests.support.delivery_env import make_export_env


def test_configured_link_defaults_and_limits(appliance_factory, sqlite_url, fake_clock, clip_factory):
    env = make_api_env(appliance_factory, sqlite_url, fake_clock,
                       delivery={"default_expiry_hours": 5, "max_expiry_hours": 48, "default_max_downloads": 2})
    x = make_export_env(env, clip_factory.get(seconds=8).path)
    package_id = x.export("olga")["package_id"]
    link = x.link(package_id, "mia")["delivery"]
    assert link["downloads_left"] == 2
    lifetime = datetime.fromisoformat(link["expires_at"]) - datetime.fromisoformat(link["created_at"])
    assert lifetime == timedelta(hours=5)
    r = env.client("mia").post(f"/api/packages/{package_id}/deliveries",
                               json={"recipient": "Politi", "expires_hours": 72})
    assert r.status_code == 422 and "48" in r.text, r.text
    r = env.client("mia").post(f"/api/packages/{package_id}/deliveries", json={"recipient": "Politi",
                                                                               "expires_hours": 48})
    assert r.status_code == 201, r.text


def test_links_use_the_configured_public_url(appliance_factory, sqlite_url, fake_clock, clip_factory):
    env = make_api_env(appliance_factory, sqlite_url, fake_clock,
                       delivery={"public_url": "https://cctv.library.example/vms/"})
    x = make_export_env(env, clip_factory.get(seconds=8).path)
    created = x.link(x.export("olga")["package_id"], "mia")
    assert created["url"] == f"https://cctv.library.example/vms/d/{created['token']}"  # not the internal address


@pytest.mark.parametrize("url", ["ftp://x.example", "https://u:secret@x.example", "https://x.example/?a=1",
                                 "https://x.example/#f", "cctv.library.example"])
def test_a_bad_public_url_is_refused_without_echoing_credentials(url):
    from vms.core.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="delivery.public_url") as err:
        parse_config(f'[delivery]\npublic_url = "{url}"\n', "vms.toml")
    assert "secret" not in str(err.value)
