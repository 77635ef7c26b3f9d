"""A third-party ONVIF camera for the tests (testkit/onvif_camera.py: ipycam's ONVIF parts on 127.0.0.1), and a
hostile one of our own (any bytes for any request) for the client's refusals.

``onvif_camera`` (fixture) starts ipycam in a subprocess with user ``ONVIF_USER`` and password
``ONVIF_PASSWORD`` on free ports (TCP for SOAP, UDP for discovery); without ipycam installed it skips locally
and fails with CI=true (``deploy/dev.sh test`` installs it).
"""

from __future__ import annotations

import http.server
import importlib.util
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fixtures import missing_component

ONVIF_USER = "onvif-admin"
ONVIF_PASSWORD = "Kamera-Kode-0815"
ROOT = Path(__file__).resolve().parents[2]
__all__ = ["onvif_camera"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class OnvifCamera:
    port: int
    discovery_port: int
    process: subprocess.Popen

    @property
    def device_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/onvif/device_service"

    @property
    def probe_target(self) -> str:
        return f"127.0.0.1:{self.discovery_port}"


@pytest.fixture
def onvif_camera(tmp_path):
    if importlib.util.find_spec("ipycam") is None:
        missing_component("ipycam (the third-party virtual ONVIF camera) is not installed: ./deploy/dev.sh test "
                          "installs it (pip install --no-deps ipycam==1.3.0)")
    port, discovery_port = free_port(), free_port(socket.SOCK_DGRAM)
    env = dict(os.environ, ONVIF_USER=ONVIF_USER, ONVIF_PASSWORD=ONVIF_PASSWORD, ONVIF_NAME="Virtual Camera")
    process = subprocess.Popen([sys.executable, "-m", "testkit.onvif_camera", str(port), str(discovery_port)],
                               cwd=tmp_path, env=dict(env, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        if line.strip() != "ready":
            process.kill()
            pytest.fail(f"the ONVIF camera did not start: {line}{process.stdout.read()[-2000:]}")
        yield OnvifCamera(port, discovery_port, process)
    finally:
        process.kill()
        process.wait(timeout=10)


class Hostile:
    """An HTTP server answering every POST with ``body`` (bytes) and ``status``; a UDP socket sending
    ``datagrams`` to whoever probes it."""

    def __init__(self, body: bytes = b"", status: int = 200):
        self.body, self.status = body, status
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/soap+xml")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/onvif/device_service"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def udp_responder(datagrams: list[bytes]) -> tuple[socket.socket, int]:
    """A UDP socket on 127.0.0.1 answering the first datagram it gets with ``datagrams`` (a thread)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)

    def answer():
        try:
            data, sender = sock.recvfrom(65535)
            message_id = data.split(b"<a:MessageID>")[1].split(b"<")[0]
            for d in datagrams:
                sock.sendto(d.replace(b"{RELATES}", message_id), sender)
        except OSError:
            pass

    threading.Thread(target=answer, daemon=True).start()
    return sock, sock.getsockname()[1]
