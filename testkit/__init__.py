"""Real parts for tests and benchmarks, importable without pytest: GStreamer's RTSP server harness
(``rtsp_server``), clip makers (``clips``, ``media``), appliance and config factory (``appliance``),
recorder helpers (``recording``), stored footage (``footage``), a TCP proxy for outage tests."""
