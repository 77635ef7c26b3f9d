"""ONVIF, the little the camera form needs: find cameras (WS-Discovery) and ask one for its RTSP address.

Our own small client, SOAP 1.2 over the standard library (``urllib``, ``socket``, ``xml.etree``), no ONVIF
library:

* :func:`discover` sends one WS-Discovery ``Probe`` (type ``dn:NetworkVideoTransmitter``) by UDP, by default
  to the multicast group ``239.255.255.250:3702`` (TTL 1: this network segment only), and collects the
  ``ProbeMatch`` answers that relate to it for ``timeout_s`` seconds.  A datagram that is not a well-formed
  answer to our probe is ignored (a hostile or confused device cannot stop the search);
* :func:`stream_address` asks one device: ``GetCapabilities`` (where its media service is),
  ``GetProfiles`` (the first profile: ONVIF lists the main stream first) and ``GetStreamUri`` (RTP over
  RTSP).  With a user name it signs every request with a WS-Security ``UsernameToken``
  (``PasswordDigest``: SHA-1 of nonce, time and password; the password never travels in clear), its time
  corrected by the device's own clock (``GetSystemDateAndTime``, unsigned), since devices refuse tokens
  whose time is off by more than a few minutes.

Answers are read defensively: at most :data:`MAX_ANSWER` bytes, a DTD or entity declaration refused before
parsing (a SOAP answer never has one; this closes entity expansion), the elements looked up by local name
whatever the prefixes, and the stream address must be ``rtsp://``.  Every failure is an :class:`OnvifError`
saying what went wrong with which device, in words for the administrator (catalog keys under
``camera_onvif.``), never with the password: nothing here logs, and credentials are never part of an error.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from vms.core.camera_config import split_credentials
from vms.core.errors import DomainError, Kind
from vms.core.i18n import N_

MULTICAST = ("239.255.255.250", 3702)
DISCOVERY_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0
MAX_ANSWER = 256 * 1024  # bytes of one SOAP answer or discovery datagram
MAX_DEVICES = 64

_SOAP = "http://www.w3.org/2003/05/soap-envelope"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
_B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
_NS = (f'xmlns:s="{_SOAP}" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
       'xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"')
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}$")
_BAD_DEVICE = ("the device address must be a host, host:port or an http(s) URL; the user name and password go "
               "in their own fields")
_DECLARATION = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class OnvifError(DomainError):
    """An ONVIF lookup failed; ``key``/``params`` say it in the reader's language (params never hold secrets)."""

    def __init__(self, kind: Kind, key: str, message: str, **params):
        super().__init__(kind, message, key=key, params=params)


@dataclass(frozen=True)
class Device:
    """One answer to the probe: the device service address (``XAddrs``, first http one) and what its scopes
    say about it (``onvif://www.onvif.org/name/...`` and ``.../hardware/...``, URL-decoded, may be empty)."""

    address: str
    name: str = ""
    hardware: str = ""


@dataclass(frozen=True)
class StreamAddress:
    uri: str  # rtsp://host[:port]/path, without credentials
    profile: str  # the profile token it belongs to
    media_service: str


# ---------------------------------------------------------------- what the administrator typed


def probe_target(text: str | None) -> tuple[str, int]:
    """``""`` -> the multicast group; ``host`` or ``host:port`` (an IPv4 address or a name) otherwise."""
    text = (text or "").strip()
    if not text:
        return MULTICAST
    host, _, port = text.partition(":")
    if not _HOST.match(host) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise OnvifError(Kind.INVALID, N_("camera_onvif.bad_target"),
                         "the search address must be host or host:port, e.g. 239.255.255.250:3702")
    return host, int(port) if port else MULTICAST[1]


def device_url(text: str | None) -> str:
    """The device service URL of what was typed: ``10.0.0.10``, ``10.0.0.10:8080`` or a full http(s) URL."""
    text = (text or "").strip()
    if not text or len(text) > 500 or any(ord(c) < 33 for c in text):
        raise OnvifError(Kind.INVALID, N_("camera_onvif.bad_device"), _BAD_DEVICE)
    if "://" not in text:
        text = f"http://{text}/onvif/device_service"
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError:
        parts = parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise OnvifError(Kind.INVALID, N_("camera_onvif.bad_device"), _BAD_DEVICE)
    return text


# ---------------------------------------------------------------- discovery


def _probe(message_id: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{_SOAP}" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
        '<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
        f'<a:MessageID>{message_id}</a:MessageID>'
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>'
        '<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>'
    ).encode()


def discover(target: tuple[str, int] = MULTICAST, *, timeout_s: float = DISCOVERY_TIMEOUT_S) -> list[Device]:
    """The devices answering one probe sent to ``target`` within ``timeout_s`` (sorted by address)."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    found: dict[str, Device] = {}
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.sendto(_probe(message_id), target)
            deadline = time.monotonic() + timeout_s
            while len(found) < MAX_DEVICES and (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, _sender = sock.recvfrom(MAX_ANSWER)
                except TimeoutError:
                    break
                for device in _probe_matches(data, message_id):
                    found.setdefault(device.address, device)
    except OSError as exc:  # no route, name unknown, ...
        raise OnvifError(Kind.PRECONDITION, N_("camera_onvif.search_failed"),
                         f"the search for cameras at {target[0]}:{target[1]} failed ({exc.strerror or exc})",
                         target=f"{target[0]}:{target[1]}") from None
    return sorted(found.values(), key=lambda d: d.address)


def _probe_matches(data: bytes, message_id: str) -> list[Device]:
    try:
        root = _parse(data)
    except ValueError:
        return []
    relates = _text(root, "RelatesTo")
    if relates is not None and relates != message_id:
        return []  # an answer to somebody else's probe
    devices = []
    for match in _all(root, "ProbeMatch"):
        xaddrs = (_text(match, "XAddrs") or "").split()
        address = next((a for a in xaddrs if a.startswith(("http://", "https://")) and len(a) <= 500), "")
        if not address or "@" in urlsplit(address).netloc:
            continue
        scopes = (_text(match, "Scopes") or "").split()
        devices.append(Device(address, _scope(scopes, "name"), _scope(scopes, "hardware")))
    return devices


def _scope(scopes: list[str], kind: str) -> str:
    """The value of the scope ``onvif://www.onvif.org/KIND/VALUE``; words after it that are no URI belong to it
    (devices that do not percent-encode a space in their name, ipycam among them)."""
    prefix = f"onvif://www.onvif.org/{kind}/"
    for i, scope in enumerate(scopes):
        if scope.startswith(prefix):
            words = [scope[len(prefix):]]
            words += list(_until_uri(scopes[i + 1:]))
            value = unquote(" ".join(words))
            return "".join(c for c in value if c.isprintable())[:100]
    return ""


def _until_uri(words: list[str]):
    for word in words:
        if ":" in word:
            return
        yield word


# ---------------------------------------------------------------- the stream address


def stream_address(device: str, username: str = "", password: str = "", *,
                   timeout_s: float = REQUEST_TIMEOUT_S) -> StreamAddress:
    """Ask the device at ``device`` (a device service URL, see :func:`device_url`) for its main RTSP address."""
    client = _Client(device, username, password, timeout_s)
    client.sync_clock()
    media = client.media_service()
    root = client.call(media, "<trt:GetProfiles/>")
    profile = next((p.get("token") for p in _all(root, "Profiles") if p.get("token")), None)
    if not profile or len(profile) > 64 or not profile.isprintable():
        raise client.bad_answer("no media profile")
    setup = ("<trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol>"
             "</tt:Transport></trt:StreamSetup>")
    root = client.call(media, f"<trt:GetStreamUri>{setup}<trt:ProfileToken>{_escape(profile)}</trt:ProfileToken>"
                              "</trt:GetStreamUri>")
    uri = (_text(root, "Uri") or "").strip()
    if not uri.lower().startswith("rtsp://") or len(uri) > 1000 or not uri.isprintable() or " " in uri:
        raise client.bad_answer("no rtsp:// stream address")
    return StreamAddress(split_credentials(uri)[0], profile, media)


class _Client:
    def __init__(self, url: str, username: str, password: str, timeout_s: float):
        self.url, self.username, self.password, self.timeout_s = url, username, password, timeout_s
        self.where = split_credentials(url)[0]
        self.offset_s = 0.0  # device clock minus ours

    def bad_answer(self, what: str) -> OnvifError:
        return OnvifError(Kind.PRECONDITION, N_("camera_onvif.bad_answer"),
                          f"{self.where} did not answer as an ONVIF camera does ({what})", device=self.where)

    def sync_clock(self) -> None:
        try:
            root = self.call(self.url, "<tds:GetSystemDateAndTime/>", sign=False)
        except OnvifError as exc:
            if exc.key == N_("camera_onvif.unreachable"):
                raise
            return  # some devices want even this signed: our own clock, then
        utc = next(iter(_all(root, "UTCDateTime")), None)
        try:
            parts = [int(_text(utc, n) or "") for n in ("Year", "Month", "Day", "Hour", "Minute", "Second")]
            self.offset_s = datetime(*parts, tzinfo=UTC).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            self.offset_s = 0.0

    def media_service(self) -> str:
        root = self.call(self.url, "<tds:GetCapabilities><tds:Category>Media</tds:Category></tds:GetCapabilities>")
        media = next(iter(_all(root, "Media")), None)
        address = (_text(media, "XAddr") or "").strip() if media is not None else ""
        parts = urlsplit(address)
        if parts.scheme in ("http", "https") and parts.hostname and "@" not in parts.netloc and len(address) <= 500:
            return address
        return self.url  # many devices serve media on the device address too

    def call(self, url: str, body: str, *, sign: bool = True) -> ET.Element:
        header = self._security() if sign and self.username else ""
        envelope = f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope {_NS}>{header}<s:Body>{body}</s:Body></s:Envelope>'
        request = urllib.request.Request(url, envelope.encode(), method="POST",
                                         headers={"Content-Type": "application/soap+xml; charset=utf-8"})
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as answer:
                data, status = answer.read(MAX_ANSWER + 1), answer.status
        except urllib.error.HTTPError as exc:
            data, status = exc.read(MAX_ANSWER + 1), exc.code
            exc.close()
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OnvifError(Kind.PRECONDITION, N_("camera_onvif.unreachable"),
                             f"{self.where} could not be reached ({getattr(reason, 'strerror', None) or reason})",
                             device=self.where) from None
        if len(data) > MAX_ANSWER:
            raise self.bad_answer("answer too long")
        try:
            root = _parse(data)
        except ValueError:
            root = None
        fault = _fault(root) if root is not None else ""
        if status in (401, 403) or "notauthorized" in fault.lower().replace(" ", ""):
            raise OnvifError(Kind.INVALID, N_("camera_onvif.refused_login"),
                             f"{self.where} refused the user name and password", device=self.where)
        if root is None:
            raise self.bad_answer(f"HTTP {status}, not SOAP XML")
        if fault or status != 200:
            raise self.bad_answer(f"HTTP {status}, fault: {fault[:200] or 'none'}")
        return root

    def _security(self) -> str:
        nonce = os.urandom(16)
        created = datetime.fromtimestamp(time.time() + self.offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()).decode()
        return (f'<s:Header><wsse:Security s:mustUnderstand="1" xmlns:wsse="{_WSSE}" xmlns:wsu="{_WSU}">'
                f"<wsse:UsernameToken><wsse:Username>{_escape(self.username)}</wsse:Username>"
                f'<wsse:Password Type="{_DIGEST}">{digest}</wsse:Password>'
                f'<wsse:Nonce EncodingType="{_B64}">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
                f"<wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a device that redirects is answered as it is (3xx: bad answer)
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------- XML, read defensively


def _parse(data: bytes) -> ET.Element:
    if len(data) > MAX_ANSWER or _DECLARATION.search(data):
        raise ValueError("too long, or a DTD")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(str(exc)) from None


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _all(root: ET.Element | None, name: str) -> list[ET.Element]:
    return [] if root is None else [e for e in root.iter() if _local(e.tag) == name]


def _text(root: ET.Element | None, name: str) -> str | None:
    found = next(iter(_all(root, name)), None)
    return None if found is None else (found.text or "")


def _fault(root: ET.Element) -> str:
    fault = next(iter(_all(root, "Fault")), None)
    if fault is None:
        return ""
    words = [(e.text or "").strip() for e in fault.iter() if _local(e.tag) in ("Value", "Text", "faultstring")]
    return " ".join(w for w in words if w) or "fault"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

