"""The web pages load nothing from outside the appliance: no script, style, font or image by an absolute
(``http://``, ``https://``) or protocol-relative (``//host``) address in any template or static file.  An
appliance often has no internet, and whatever it loads runs on the web UI's origin (docs/design/security-headers.md)."""

from __future__ import annotations

import re
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
#: src=/href=/poster=/srcset=/action= attributes, CSS url() and @import, whose target leaves the appliance
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|poster|srcset|action|data)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])\s*(?:https?:)?//""",
    re.IGNORECASE)


def _files() -> list[Path]:
    return sorted(p for d in ("templates", "static") for p in (API / d).rglob("*") if p.is_file())


def test_the_scan_finds_what_it_is_meant_to_find():
    for bad in ('<script src="https://cdn.example/x.js">', "<link href='//cdn.example/x.css'>",
                '<img src=http://example.org/a.png>', "body { background: url(https://example.org/a.png) }",
                '@import "https://fonts.example/css";'):
        assert EXTERNAL.search(bad), bad
    for good in ('<script src="/static/web.js">', '<a href="/signin">', '<link href="{{ assets }}/swagger-ui.css">'):
        assert not EXTERNAL.search(good), good


def test_no_template_or_static_file_loads_anything_from_outside():
    files = _files()
    assert any(p.name == "api_docs.html" for p in files) and any(p.name == "web.css" for p in files)
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for m in EXTERNAL.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"{path.relative_to(API)}:{line}: {text[m.start():m.end() + 40]!r}")
    assert not found, "\n".join(found)
