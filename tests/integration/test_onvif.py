"""ONVIF for the camera form, against a third-party ONVIF camera (ipycam, in a subprocess on 127.0.0.1) and
against hostile ones of our own: discovery and the stream address through our client (vms/ops/onvif.py),
WS-Security digest login, a wrong password, garbage, entity bombs, oversized and evasive answers; then the
administrator's form (fill the source from ONVIF; audited; the password never back on the page or in the log)."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from tests.support.api_env import *  # noqa: F403 (fixtures)
from tests.support.onvif import *  # noqa: F403 (fixtures)
from tests.support.onvif import ONVIF_PASSWORD, ONVIF_USER, Hostile, udp_responder
from vms.core.errors import Kind
from vms.ops import onvif

STREAM = "rtsp://127.0.0.1:8554/video_main"  # ipycam's main stream address when its own address is 127.0.0.1


def test_our_client_finds_the_third_party_camera_and_gets_its_stream_address(onvif_camera):
    devices = onvif.discover(onvif.probe_target(onvif_camera.probe_target), timeout_s=1.5)
    assert [d.address for d in devices] == [onvif_camera.device_url]
    assert devices[0].name == "Virtual Camera"  # ipycam does not encode the space

    found = onvif.stream_address(onvif.device_url(f"127.0.0.1:{onvif_camera.port}"), ONVIF_USER, ONVIF_PASSWORD)
    assert found.uri == STREAM
    assert found.profile == "Profile_Main"  # the first profile ipycam lists: its main stream
    assert found.media_service == f"http://127.0.0.1:{onvif_camera.port}/onvif/media_service"  # from GetCapabilities


@pytest.mark.parametrize("user, password", [(ONVIF_USER, "wrong"), ("someone-else", ONVIF_PASSWORD), ("", "")])
def test_a_wrong_or_missing_login_is_refused_and_says_so_without_the_password(onvif_camera, user, password):
    with pytest.raises(onvif.OnvifError) as refused:
        onvif.stream_address(onvif_camera.device_url, user, password)
    assert refused.value.kind == Kind.INVALID and refused.value.key == "camera_onvif.refused_login"
    assert refused.value.params == {"device": onvif_camera.device_url}
    assert "refused the user name and password" in refused.value.message
    assert ONVIF_PASSWORD not in refused.value.message and "wrong" not in refused.value.message


def test_an_unreachable_or_silent_device_is_a_clear_error_within_the_timeout():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(onvif.OnvifError) as refused:
        onvif.stream_address(f"http://127.0.0.1:{port}/onvif/device_service", "u", "p")
    assert refused.value.key == "camera_onvif.unreachable" and "could not be reached" in refused.value.message
    with socket.socket() as silent:  # accepts (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(onvif.OnvifError) as refused:
            onvif.stream_address(f"http://127.0.0.1:{silent.getsockname()[1]}/", "u", "p", timeout_s=0.5)
    assert refused.value.key == "camera_onvif.unreachable" and "timed out" in refused.value.message


def _soap(body: str) -> bytes:
    return (f'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="urn:trt" xmlns:tt="urn:tt">'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        b'<s:Body><trt:Profiles xmlns:trt="urn:trt" token="p"/><tt:Uri xmlns:tt="urn:tt">rtsp://x/&lol3;</tt:Uri>'
        b"</s:Body></s:Envelope>")
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<r><Profiles token="p"/><Uri>rtsp://h/&x;</Uri></r>')


@pytest.mark.parametrize("body, status, what", [
    (b"\x00\xff garbage \xfe", 200, "not SOAP XML"),
    (b"<html><body>Welcome to nginx</body></html>", 200, "no media profile"),
    (BOMB, 200, "not SOAP XML"),
    (EXTERNAL, 200, "not SOAP XML"),
    (b"<a>" + b"x" * (onvif.MAX_ANSWER + 10) + b"</a>", 200, "answer too long"),
    (_soap('<trt:Profiles token="p1"/><tt:Uri>javascript:alert(1)</tt:Uri>'), 200, "no rtsp:// stream address"),
    (_soap('<trt:Profiles token="p1"/><tt:Uri>rtsp://a b/\u2028</tt:Uri>'), 200, "no rtsp:// stream address"),
    (_soap('<trt:Profiles token="p1"/>'), 200, "no rtsp:// stream address"),
    (_soap("<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code></s:Fault>"), 500, "fault: s:Receiver"),
    (b"", 302, "not SOAP XML"),  # a redirect is not followed
])
def test_hostile_or_broken_answers_are_refused_clearly(body, status, what):
    device = Hostile(body, status)
    try:
        with pytest.raises(onvif.OnvifError) as refused:
            onvif.stream_address(device.url, "u", "p", timeout_s=3)
    finally:
        device.close()
    assert refused.value.key == "camera_onvif.bad_answer" and refused.value.kind == Kind.PRECONDITION
    assert what in refused.value.message and "did not answer as an ONVIF camera does" in refused.value.message


def test_a_stream_address_with_credentials_in_it_comes_back_without_them():
    device = Hostile(_soap('<trt:Profiles token="p1"/><tt:Uri>rtsp://root:pass@10.0.0.9:554/live</tt:Uri>'))
    try:
        found = onvif.stream_address(device.url)
    finally:
        device.close()
    assert found.uri == "rtsp://10.0.0.9:554/live" and found.profile == "p1"
    assert found.media_service == device.url  # no GetCapabilities media address: the device address


def test_discovery_keeps_the_good_answer_among_hostile_datagrams():
    match = ('<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:a="urn:a" xmlns:d="urn:d">'
             "<e:Header><a:RelatesTo>{r}</a:RelatesTo></e:Header><e:Body><d:ProbeMatches><d:ProbeMatch>"
             "<d:Scopes>onvif://www.onvif.org/name/Indgang%20Nord onvif://www.onvif.org/hardware/X1</d:Scopes>"
             "<d:XAddrs>{x}</d:XAddrs></d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>")
    datagrams = [b"\xff\x00 not xml", BOMB,
                 match.format(r="urn:uuid:someone-else", x="http://10.9.9.9/onvif").encode(),
                 match.format(r="{RELATES}", x="ftp://10.0.0.7/x file:///etc/passwd").encode(),
                 match.format(r="{RELATES}", x="http://u:p@10.0.0.8/onvif").encode(),
                 match.format(r="{RELATES}", x="urn:x http://10.0.0.5/onvif/device_service").encode(),
                 match.format(r="{RELATES}", x="http://10.0.0.5/onvif/device_service").encode()]  # twice: once
    sock, port = udp_responder(datagrams)
    try:
        devices = onvif.discover(("127.0.0.1", port), timeout_s=1.0)
    finally:
        sock.close()
    assert devices == [onvif.Device("http://10.0.0.5/onvif/device_service", "Indgang Nord", "X1")]


@pytest.mark.parametrize("text", ["", "\x00", "x" * 600, "http://user:pw@10.0.0.1/onvif", "ftp://10.0.0.1/",
                                  "javascript:alert(1)", "http://10.0.0.1:99999/", "user:pw@10.0.0.1"])
def test_device_addresses_that_are_not_one_are_refused(text):
    with pytest.raises(onvif.OnvifError) as refused:
        onvif.device_url(text)
    assert refused.value.key == "camera_onvif.bad_device" and refused.value.kind == Kind.INVALID
    assert "pw" not in refused.value.message


def test_search_addresses():
    assert onvif.probe_target("") == ("239.255.255.250", 3702)
    assert onvif.probe_target("10.0.0.255:3702") == ("10.0.0.255", 3702)
    assert onvif.probe_target("camera.local") == ("camera.local", 3702)
    for bad in ("10.0.0.1:0", "10.0.0.1:x", "a b", "10.0.0.1:70000", "<script>"):
        with pytest.raises(onvif.OnvifError):
            onvif.probe_target(bad)


# ---------------------------------------------------------------- the administrator's form


def _audit(env, action: str) -> list[dict]:
    r = env.client("aud").get("/api/audit", params={"action": action, "limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_the_form_finds_the_camera_and_fills_the_source_and_the_password_stays_out(sqlite_api_env, onvif_camera,
                                                                                   caplog):
    env = sqlite_api_env
    admin = env.client("adam")
    typed = {"id": "gate", "name": "Port", "place": "Nord", "source": "", "retain_days": "14", "transport": "tcp",
             "enabled": "on"}
    with caplog.at_level(logging.DEBUG):
        r = admin.post("/admin/cameras/onvif/lookup", data=typed | {
            "onvif": "find", "onvif_target": onvif_camera.probe_target})
        assert r.status_code == 200, r.text[:500]
        assert 'id="onvif-devices"' in r.text and onvif_camera.device_url in r.text and 'value="gate"' in r.text

        r = admin.post("/admin/cameras/onvif/lookup", data=typed | {"onvif_pick": onvif_camera.device_url})
        assert r.status_code == 200 and f'name="onvif_address" maxlength="500" value="{onvif_camera.device_url}"' in r.text

        r = admin.post("/admin/cameras/onvif/lookup", data=typed | {
            "onvif": "stream", "onvif_address": f"127.0.0.1:{onvif_camera.port}", "username": ONVIF_USER,
            "password": ONVIF_PASSWORD})
        assert r.status_code == 200, r.text[:500]
        assert f'name="source" required maxlength="2000" value="{STREAM}"' in r.text and 'id="onvif-found"' in r.text
        assert 'action="/admin/cameras/new"' in r.text  # still the new camera's form
        assert ONVIF_PASSWORD not in r.text and ONVIF_USER not in r.text

        r = admin.post("/admin/cameras/onvif/lookup", data=typed | {
            "onvif": "stream", "onvif_address": onvif_camera.device_url, "username": ONVIF_USER,
            "password": "wrong-" + ONVIF_PASSWORD})
        assert r.status_code == 422 and 'id="onvif-error"' in r.text
        assert "afviste brugernavn og adgangskode" in r.text and ONVIF_PASSWORD not in r.text

        # an existing camera's form: the page comes back as that camera's form
        r = admin.post("/admin/cameras/onvif/lookup", data={"editing": "hall", "source": "rtsp://127.0.0.1:1/hall",
                                                            "onvif": "stream", "onvif_address": "http://a b/"})
        assert r.status_code == 422 and 'action="/admin/cameras/hall"' in r.text and "ONVIF-adresse skal" in r.text
        assert admin.post("/admin/cameras/onvif/lookup", data={"editing": "nosuch", "onvif": "find"}).status_code == 404

    assert env.client("olga").post("/admin/cameras/onvif/lookup", data={"onvif": "find"}).status_code == 403
    finds = _audit(env, "camera.onvif_find")
    assert [json.loads(e["detail"]) for e in finds] == [{"target": onvif_camera.probe_target, "found": 1}]
    asks = _audit(env, "camera.onvif_stream")
    assert len(asks) == 3
    details = sorted((e["outcome"], e["detail"]) for e in asks)
    assert any(o == "ok" and json.loads(d) == {"device": onvif_camera.device_url, "login": True,
                                               "profile": "Profile_Main", "source": STREAM} for o, d in details)
    assert any(o.startswith("refused: ") and "refused the user name and password" in o for o, _ in details)
    everything = json.dumps(finds + asks) + caplog.text
    assert ONVIF_PASSWORD not in everything and ONVIF_USER not in everything
