"""A third-party virtual ONVIF camera for the tests: ipycam 1.3.0's ONVIF parts, bound to 127.0.0.1 only.

ipycam ("pure Python virtual IP camera with ONVIF support", PyPI, installed by ``deploy/dev.sh test`` with
``--no-deps``: its ``opencv-python`` requirement would clash with our ``opencv-python-headless``) answers
the ONVIF device and media services (its own SOAP templates, its own WS-Security ``UsernameToken``
check) and WS-Discovery probes (its own responder).  Its ``IPCamera.start`` binds every interface, the
fixed discovery port 3702 and starts video capture; so this runs ipycam's classes, unchanged, on sockets of
our choosing: its HTTP handler on ``127.0.0.1:PORT`` and its discovery responder on ``127.0.0.1:DPORT``
(unicast probes; its Hello/Bye go to that same loopback port).  No video runs: its GetStreamUri names its
own RTSP address (``rtsp://127.0.0.1:8554/video_main``), which is all the form needs.

``python -m testkit.onvif_camera PORT DPORT`` with ``ONVIF_USER``/``ONVIF_PASSWORD`` in the environment
(both empty: no authentication); prints ``ready`` when it answers.
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import sys
import threading
import types


def main(argv: list[str]) -> int:
    from ipycam.config import CameraConfig
    from ipycam.discovery import WSDiscoveryServer
    from ipycam.http import IPCameraHTTPHandler
    from ipycam.onvif import ONVIFService
    from ipycam.ptz import PTZController

    port, discovery_port = int(argv[0]), int(argv[1])
    config = CameraConfig(local_ip="127.0.0.1", onvif_port=port, name=os.environ.get("ONVIF_NAME", "Virtual Camera"),
                          username=os.environ.get("ONVIF_USER", ""), password=os.environ.get("ONVIF_PASSWORD", ""))
    config._config_path = os.devnull  # never write a camera_config.json into the working directory
    ptz = PTZController(output_width=config.main_width, output_height=config.main_height, max_zoom=4.0)
    onvif = ONVIFService(config, ptz)
    IPCameraHTTPHandler.camera = types.SimpleNamespace(onvif=onvif, config=config, ptz=ptz)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", port), IPCameraHTTPHandler)
    discovery = WSDiscoveryServer.__new__(WSDiscoveryServer)  # its __init__ binds 0.0.0.0:3702 and joins multicast
    threading.Thread.__init__(discovery, daemon=True)
    discovery.onvif, discovery.running = onvif, True
    discovery.MULTICAST_ADDR, discovery.MULTICAST_PORT = "127.0.0.1", discovery_port
    discovery.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    discovery.sock.bind(("127.0.0.1", discovery_port))
    discovery.sock.settimeout(1.0)
    discovery.start()
    print("ready", flush=True)
    try:
        server.serve_forever()
    finally:
        discovery.stop()
        ptz.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
