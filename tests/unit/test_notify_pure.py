"""Pure parts of the notifications: the back-off, errors worded without secrets, and the disk forecast's
arithmetic (the mails' words: test_notify_texts.py)."""

from __future__ import annotations

import smtplib

import pytest

from vms.notify.sender import backoff_s, describe
from vms.ops.forecast import CameraUse, forecast, words

GB = 1e9


def test_backoff_grows_and_is_capped():
    assert [backoff_s(n) for n in (1, 2, 3, 7, 8, 30)] == [60, 120, 240, 3600, 3600, 3600]


def test_errors_are_worded_without_secrets():
    assert describe(smtplib.SMTPAuthenticationError(535, b"5.7.8 user cctv password hunter2 rejected")) == \
        "SMTPAuthenticationError (server reply 535)"
    assert describe(ConnectionRefusedError(111, "refused")) == "ConnectionRefusedError"
    refused = smtplib.SMTPRecipientsRefused({"mia@x.dk": (550, b"no such user mia@x.dk")})
    assert describe(refused) == "SMTPRecipientsRefused (server reply 550)"


def test_forecast_enough_space():
    f = forecast([CameraUse("a", 14, 1 * GB), CameraUse("b", 30, 1 * GB)], total_bytes=200 * GB, free_bytes=100 * GB,
                 floor_bytes=10 * GB, stored_bytes=0)
    assert not f.short and f.need_bytes == 44 * GB and f.capacity_bytes == 90 * GB and f.days_held == 45
    assert words(f, "en") == ("The retention needs about 44.0 GB of 90.0 GB available. At the current rate the disk "
                              "holds 45 days.")
    assert "rækker disken til 45 dage" in words(f, "da") and "44,0 GB" in words(f, "da")


def test_forecast_short_names_what_each_camera_lacks():
    # capacity 30 GB: both cameras fill 1 GB a day; after 14 days 'a' stops growing (28 GB used), 'b' fills the
    # last 2 GB in 2 more days: the disk holds 16 days, and b's 30 days need 14 GB more (= 44 - 30)
    f = forecast([CameraUse("a", 14, 1 * GB), CameraUse("b", 30, 1 * GB)], total_bytes=100 * GB, free_bytes=20 * GB,
                 floor_bytes=5 * GB, stored_bytes=15 * GB)
    assert f.short and f.days_held == pytest.approx(16)
    assert [(s.camera_id, round(s.more_bytes / GB, 3)) for s in f.shortages] == [("b", 14.0)]
    assert sum(s.more_bytes for s in f.shortages) == pytest.approx(f.need_bytes - f.capacity_bytes)
    assert words(f, "en").startswith("At the current rate the disk holds 16 days; camera b's 30 days need 14.0 GB more")
    assert "kamera b: 30 dages opbevaring kræver 14,0 GB mere" in words(f, "da")


def test_forecast_waits_for_a_measurement_and_honours_quotas():
    f = forecast([CameraUse("a", 30, None)], total_bytes=100, free_bytes=50, floor_bytes=0, stored_bytes=0)
    assert f.days_held is None and f.unmeasured == ["a"] and "venter på optagelser" in words(f, "da")
    f = forecast([CameraUse("a", 30, 10 * GB, quota_bytes=20 * GB)], total_bytes=100 * GB, free_bytes=50 * GB,
                 floor_bytes=0, stored_bytes=0)
    assert f.need_bytes == 20 * GB and not f.short
