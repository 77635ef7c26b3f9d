"""Merge texts written as Python dictionaries into the web UI's gettext catalogs.

    python deploy/texts_to_po.py [--check] [DA_FILE EN_FILE]

The web UI's texts lived in ``api/web/texts_da.py`` / ``texts_en.py`` (``{"key": "text"}``); they now live in
``api/locale/{da,en}/LC_MESSAGES/messages.po`` (msgid = the key, msgstr = the text).  This script reads such
a dictionary file (parsed, never imported: any file with one ``NAME = {...}`` literal of string keys and
string values) and merges it into the catalog of its language: a key of the file gets the file's text, a key
only in the catalog is kept, new keys are appended in the file's order, so running it twice changes nothing.
The comment line above a block of keys (``# cameras (issue 16)``) becomes the entries' ``#.`` comment.

The dictionaries are gone from the tree; a branch that still adds keys to them runs this on its copies after
rebasing (the files as arguments), then deletes them.
``--check`` writes nothing and exits 1 when a key of the files is missing from a catalog or differs.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "api" / "locale"
DOMAIN = "messages"
NAMES = {"da": "Danish", "en": "English"}
HEADER = ("# The web UI's texts in {language}.  msgid: the text's key (t('key') in templates and pages), msgstr:\n"
          "# the text.  How to add or change a text: docs/design/i18n.md.")


def read_dict(path: Path) -> list[tuple[str, str, str]]:
    """(key, text, comment) for every entry of the file's dictionary literal, in the file's order."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(path))
    for node in ast.walk(tree):
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Dict):
            break
    else:
        raise SystemExit(f"{path}: no dictionary literal found")
    out, comment = [], ""
    previous_end = value.lineno
    for k, v in zip(value.keys, value.values, strict=True):
        if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
            raise SystemExit(f"{path}:{k.lineno}: a key must be a string literal")
        text = ast.literal_eval(v)
        if not isinstance(text, str):
            raise SystemExit(f"{path}:{v.lineno}: the text of {k.value!r} must be a string")
        for line in lines[previous_end:k.lineno - 1]:  # comment lines between the previous entry and this one
            if line.strip().startswith("#"):
                comment = line.strip().lstrip("#").strip()
        out.append((k.value, text, comment))
        previous_end = v.end_lineno
    return out


def po_file(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load(lang: str) -> Catalog:
    path = po_file(lang)
    if path.exists():
        with path.open("rb") as f:
            return read_po(f, locale=lang, domain=DOMAIN)
    return Catalog(locale=lang, domain=DOMAIN, project="vms-appliance", version="1", fuzzy=False,
                   header_comment=HEADER.format(language=NAMES[lang]))


def merge(catalog: Catalog, entries: list[tuple[str, str, str]]) -> list[str]:
    """Put the entries into the catalog; returns the keys that were new or changed."""
    changed = []
    for key, text, comment in entries:
        old = catalog.get(key)
        if old is None:
            catalog.add(key, text, auto_comments=[comment] if comment else [])
            changed.append(key)
        elif old.string != text:
            old.string = text
            changed.append(key)
    return changed


def save(catalog: Catalog, lang: str) -> None:
    path = po_file(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.fuzzy = False
    with path.open("wb") as f:
        write_po(f, catalog, width=110, sort_output=False, omit_header=False, include_previous=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a key is missing")
    parser.add_argument("files", nargs="*", type=Path, help="DA_FILE EN_FILE (default: api/web/texts_{da,en}.py)")
    args = parser.parse_args(argv)
    files = args.files or [ROOT / "api/web/texts_da.py", ROOT / "api/web/texts_en.py"]
    if not all(f.exists() for f in files):
        parser.error(f"{', '.join(str(f) for f in files if not f.exists())}: no such file (the texts are in "
                     "api/locale since the dictionaries went; give the files of an old branch)")
    if len(files) != 2:
        parser.error("give the Danish and the English file")
    status = 0
    for lang, path in zip(("da", "en"), files, strict=True):
        catalog = load(lang)
        changed = merge(catalog, read_dict(path))
        if args.check:
            if changed:
                print(f"{po_file(lang).relative_to(ROOT)}: {len(changed)} key(s) missing or different: "
                      + ", ".join(changed[:20]))
                status = 1
            continue
        save(catalog, lang)
        print(f"{po_file(lang).relative_to(ROOT)}: {len(changed)} key(s) added or changed, {len(catalog)} in all")
    return status


if __name__ == "__main__":
    sys.exit(main())
