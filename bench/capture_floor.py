"""The recorder's reading floor: OpenCV's FFmpeg capture opened exactly as vms.recording.capture opens it (raw
packets, same transport and timeouts), one thread per stream doing nothing but ``grab()``: no retrieve, no
timestamps, no encryption, no files.  Run by ``bench.recorder`` as its own process so the kernel's
accounting gives its CPU alone.

    python -m bench.capture_floor URL [URL ...]

Prints ``ready`` once every stream has delivered a packet; stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading

from vms.recording.capture import Capture


def main(urls: list[str]) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    started = threading.Barrier(len(urls) + 1)
    errors: list[str] = []

    def read(url: str) -> None:
        cap = Capture(url)
        try:
            cap.open()
            cv = cap._cap  # the cv2.VideoCapture vms.recording.capture opened (private: this floor bypasses its reads)
            ok = cv.grab()
            if not ok:
                errors.append(f"{url}: no first packet")
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"{url}: {exc}")
            ok = False
        started.wait()
        while ok and not stop.is_set():
            ok = cv.grab()
        cap.close()

    threads = [threading.Thread(target=read, args=(u,), daemon=True) for u in urls]
    for t in threads:
        t.start()
    started.wait()
    if errors:
        sys.exit("capture floor: " + "; ".join(errors))
    print("ready", flush=True)
    stop.wait()
    for t in threads:
        t.join(timeout=5)


if __name__ == "__main__":
    main(sys.argv[1:])
