"""Access API under load, and audit-trail verification of 1 M entries.

    .venv/bin/python -m bench.api [--db sqlite|postgresql] [--clients 64] [--seconds 10]
                                  [--tickets 1000] [--entries 1000000] [--dir DIR]

The real app runs as ``vms serve --config F --no-recorder --no-janitor``
(uvicorn, one process); this process is the load generator on loopback:
``--clients`` keep-alive HTTP/1.1 connections, each sending its next request
as soon as the previous answer has been read (closed loop).  The client is a
few lines of asyncio streams rather than httpx, so that it takes as little of
the machine's CPU from the server as it can; its CPU seconds and the server's
are printed next to the figures.  Every answer's status is checked: a phase
with an unexpected status fails the run (a figure of errors is no figure).

Phases, each ``--seconds`` long after one second of warm-up:

* ``floor``: ``GET /api/health``, no sign-in, no database: uvicorn, FastAPI's
  routing and middleware and nothing else.  What no route of this server can beat.
* ``baseline``: ``GET /api/auth/me`` with a bearer token: authentication, one
  read, no audit entry.  The ceiling of an authenticated route.
* ``list``: ``GET /api/tickets?limit=50`` by a manager (every ticket visible)
  with ``--tickets`` tickets filed beforehand: ``list_p50_ms``, ``list_p99_ms``.
* ``audit_appends``: the audited request is **filing a ticket** (``POST /api/tickets``
  by one of four operators, cameras/window/purpose/legal basis as the web UI
  sends them): one transaction inserts the ticket, its cameras and the
  ``ticket.file`` audit entry, which takes the chain's ``audit_head`` row lock.
  Every 201 is one appended entry; the bench checks afterwards that the audit
  trail grew by exactly that many entries.  ``audit_appends_per_s``.
  (Sign-in is audited too, but it is Argon2id on purpose, tens of ms of CPU
  each: it is no measure of the audit trail.)

Verification: a fresh database (same kind) gets ``--entries`` entries
written directly (batches of 10,000 rows, each hash computed with
:func:`storage.sql.audit.entry_hash` under the trail's audit key, the head row set to the last one), then the
real command ``vms audit verify --config F`` runs as a process and its wall
time is ``verify_1m_s`` (interpreter start and imports included; the time the
command prints for the chain walk alone is ``verify_walk_s``).

PostgreSQL: ``--db postgresql`` uses a fresh schema in the server named by
``VMS_BENCH_PG`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``),
dropped at the end.  Needs nothing beyond the project's venv (no wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import tomli_w
from sqlalchemy.orm import Session

from bench.common import cpu_s, emit, machine
from storage.keys.keyring import write_key_file
from storage.sql import audit as audit_store
from storage.sql import index
from storage.sql.db import open_database
from storage.sql.models import AuditEntry, AuditHead
from vms.access import audit_key, users
from vms.access.audit import Actor, audited
from vms.appliance import Appliance
from vms.core.config import load_config

PG_URL = os.environ.get("VMS_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VMS = Path(sys.executable).with_name("vms")
PASSWORD = "bench horse battery staple"
OPERATORS = ("olga", "otto", "oscar", "ole")
CAMERAS = [{"id": f"cam{i:02d}", "source": f"rtsp://127.0.0.1:1/cam{i:02d}", "retain_days": 30} for i in range(8)]


# ---------------------------------------------------------------- databases


class Database:
    """A fresh database: a SQLite file in the scratch directory, or a PostgreSQL schema."""

    def __init__(self, kind: str, scratch: Path, name: str):
        self.kind, self.schema = kind, None
        if kind == "sqlite":
            self.url = f"sqlite:///{scratch / name / 'index.db'}"
            return
        self.schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
        admin.dispose()
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        if self.schema:
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{self.schema}" CASCADE'))
            admin.dispose()


def make_appliance(scratch: Path, name: str, db: Database, **top) -> Path:
    data = scratch / name
    data.mkdir(mode=0o700, exist_ok=True)
    cfg = {"node_id": "bench", "data_dir": ".", "database_url": db.url, "cameras": CAMERAS, **top}
    path = data / "vms.toml"
    path.write_text(tomli_w.dumps(cfg))
    write_key_file(data / "keys" / "master.key")
    return path


# ---------------------------------------------------------------- the HTTP client


def iso(t_us: int) -> str:
    return datetime.fromtimestamp(t_us / 1e6, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def call(base: str, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    """One request with urllib (setup only): (status, JSON body, response headers)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def bearer_token(base: str, name: str) -> str:
    """Sign in (Argon2id, once) and create an API token."""
    status, body, headers = call(base, "POST", "/api/auth/signin", {"name": name, "password": PASSWORD})
    assert status == 200, (status, body)
    cookie = next(v.split(";", 1)[0] for k, v in headers.items() if k.lower() == "set-cookie" and "vms_session" in v)
    cookies = f"{cookie}; vms_csrf={body['csrf_token']}"
    status, body, _ = call(base, "POST", "/api/auth/tokens", {"label": "bench", "days": 1},
                           {"Cookie": cookies, "X-CSRF-Token": body["csrf_token"]})
    assert status == 201, (status, body)
    return body["token"]


def request_bytes(method: str, path: str, token: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\nContent-Length: {len(payload)}\r\n")
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = None
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked answers are not expected from these routes")
    if length is None:
        raise RuntimeError("answer without Content-Length")
    await reader.readexactly(length)
    return status


async def _load(port: int, clients: int, seconds: float, warmup: float, make_request, expect: int, server_pid: int):
    """Closed loop over ``clients`` connections; latencies (s) of requests started after warm-up,
    and the (client, server) CPU seconds when the warm-up ended."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    marks: list[float] = []

    async def mark() -> None:
        await asyncio.sleep(warmup)
        marks.extend((cpu_s(), proc_cpu_s(server_pid)))
    latencies: list[float] = []
    bad: dict[int, int] = {}
    ok = [0]

    async def client(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        try:
            while (t0 := time.perf_counter()) < stop_at:
                status = await _one(reader, writer, make_request(i, n))
                n += 1
                if status != expect:
                    bad[status] = bad.get(status, 0) + 1
                else:
                    ok[0] += 1
                if t0 >= measure_from:
                    latencies.append(time.perf_counter() - t0)
        finally:
            writer.close()

    await asyncio.gather(mark(), *(client(i) for i in range(clients)))
    # requests still running at stop_at finished a little later; throughput counts them over the time they took
    elapsed = time.perf_counter() - measure_from
    return latencies, elapsed, bad, ok[0], marks


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def phase(name: str, server_pid: int, port: int, args, make_request, expect: int) -> dict:
    l0 = loadavg()
    latencies, elapsed, bad, ok, (c0, s0) = asyncio.run(
        _load(port, args.clients, args.seconds, 1.0, make_request, expect, server_pid))
    c1, s1 = cpu_s(), proc_cpu_s(server_pid)
    if bad:
        raise SystemExit(f"{name}: unexpected answers {bad} (expected {expect}); see the server log")
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        f"{name}_requests": len(latencies),
        f"{name}_answered_ok_with_warmup": ok,
        f"{name}_per_s": len(latencies) / elapsed,
        f"{name}_p50_ms": q[49] * 1000,
        f"{name}_p99_ms": q[98] * 1000,
        f"{name}_server_cpu": (s1 - s0) / elapsed,  # cores
        f"{name}_client_cpu": (c1 - c0) / elapsed,
        f"{name}_load_avg": max(l0, loadavg()),
    }


# ---------------------------------------------------------------- the API under load


def ticket_body(now_us: int, i: int, n: int) -> dict:
    return {
        "cameras": [CAMERAS[(i + n) % len(CAMERAS)]["id"]],
        "start": iso(now_us - 3_600_000_000),
        "end": iso(now_us - 60_000_000),
        "description": f"Bicycle stolen from the rack by the entrance (bench client {i}, request {n})",
        "purpose": "Identify the thief for the police report",
        "legal_basis": "GDPR art. 6(1)(f); TV-overvågningsloven § 4",
        "action": "view",
        "recipient": "police",
    }


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vms serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"vms serve not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def serving(cfg: Path, port: int, scratch: Path):
    """``vms serve --no-recorder --no-janitor`` on ``cfg`` until the block ends (its log in
    ``scratch/serve.log``); yields (base URL, process)."""
    log = scratch / "serve.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen([str(VMS), "serve", "--config", str(cfg), "--no-recorder", "--no-janitor"],
                                stdout=fh, stderr=fh, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc, log)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_load(scratch: Path, db: Database, args) -> dict:
    port = free_port()
    cfg = make_appliance(scratch, "api", db, api={"host": "127.0.0.1", "port": port})
    app = Appliance.open(cfg)  # migrates, registers the cameras
    pw = users.hash_password(PASSWORD)
    with Session(app.engine) as s, s.begin():
        for name, role in [*((o, "operator") for o in OPERATORS), ("mia", "manager")]:
            index.add_user(s, name, role=role, password_hash=pw, now_us=app.clock.now_us(), must_change=False)
    app.close()

    with serving(cfg, port, scratch) as (base, proc):
        tokens = {name: bearer_token(base, name) for name in (*OPERATORS, "mia")}
        now_us = time.time_ns() // 1000
        t = time.perf_counter()
        for n in range(args.tickets):  # the tickets the listing shows (filed through the API, audited)
            op = OPERATORS[n % len(OPERATORS)]
            status, body, _ = call(base, "POST", "/api/tickets", ticket_body(now_us, 0, n),
                                   {"Authorization": f"Bearer {tokens[op]}"})
            assert status == 201, (status, body)
        fill_s = time.perf_counter() - t

        me = request_bytes("GET", "/api/auth/me", tokens["mia"])
        listing = request_bytes("GET", "/api/tickets?limit=50", tokens["mia"])
        status, page, _ = call(base, "GET", "/api/tickets?limit=50", headers={"Authorization": f"Bearer {tokens['mia']}"})
        assert status == 200 and page["total"] == args.tickets and len(page["items"]) == min(50, args.tickets), page

        out: dict = {"tickets_listed_from": args.tickets, "ticket_fill_s": fill_s}
        health = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n"
        out |= phase("floor", proc.pid, port, args, lambda i, n: health, 200)
        out |= phase("baseline", proc.pid, port, args, lambda i, n: me, 200)
        out |= phase("list", proc.pid, port, args, lambda i, n: listing, 200)
        single = argparse.Namespace(clients=1, seconds=min(args.seconds, 3.0))
        out |= phase("list_1client", proc.pid, port, single, lambda i, n: listing, 200)

        before = entries_in(db.url)
        def make_file(i: int, n: int) -> bytes:
            op = OPERATORS[i % len(OPERATORS)]
            return request_bytes("POST", "/api/tickets", tokens[op], ticket_body(now_us, i, n))

        t_audit = time.perf_counter()
        out |= phase("audit_appends", proc.pid, port, args, make_file, 201)
        audit_wall = time.perf_counter() - t_audit
        appended = entries_in(db.url) - before
        # every 201 (warm-up included) appended exactly one entry; nothing else did
        assert appended == out["audit_appends_answered_ok_with_warmup"], (appended, out)
        out["audit_entries_appended"] = appended
        out["audit_entries_per_s_whole_phase"] = appended / audit_wall
    out |= direct_appends(cfg, args)
    return out


def direct_appends(cfg: Path, args) -> dict:
    """Baseline without HTTP: ``--clients`` threads of this process append entries
    through :func:`vms.access.audit.audited` (an empty use case: its transaction holds
    only the entry), on the same database, after the server has stopped."""
    app = Appliance.open(cfg)
    stop_at = time.perf_counter() + 1.0 + args.seconds
    counts = [0] * args.clients
    errors: list[BaseException] = []

    def work(i: int) -> None:
        actor = Actor(OPERATORS[i % len(OPERATORS)], "operator", "127.0.0.1")
        try:
            while time.perf_counter() < stop_at:
                with audited(app.engine, app.clock, actor, "bench.append", obj=f"bench:{i}"):
                    pass
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    before = entries_in(app.config.db_url)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(args.clients)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    appended = entries_in(app.config.db_url) - before
    app.close()
    if errors:
        raise SystemExit(f"direct appends failed: {errors[0]!r}")
    assert appended == sum(counts), (appended, counts)
    return {"direct_appends_per_s": appended / elapsed}


def entries_in(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = audit_store.count(conn)
    engine.dispose()
    return n


# ---------------------------------------------------------------- verify 1 M entries


ACTIONS = [("ticket.file", "ticket:{t}"), ("footage.play", "camera:cam03"), ("auth.signin", "user:olga"),
           ("ticket.approve", "ticket:{t}"), ("export.create", "ticket:{t}")]


def build_trail(cfg: Path, entries: int, batch: int = 10_000) -> str:
    """Write ``entries`` chained entries and the head row, sealed with the trail's audit key as the appliance
    seals them (opening the appliance makes the key; an empty trail is sealed from entry 1); return the last
    hash."""
    app = Appliance.open(cfg)
    key = audit_key.key_for(app.engine).key
    app.close()
    engine = open_database(load_config(cfg).db_url)
    at = 1_790_000_000_000_000
    prev = audit_store.GENESIS
    table = AuditEntry.__table__
    with engine.begin() as conn:
        for first in range(1, entries + 1, batch):
            rows = []
            for seq in range(first, min(first + batch, entries + 1)):
                action, obj = ACTIONS[seq % len(ACTIONS)]
                t = seq // 7 + 1
                fields = {"seq": seq, "at_us": at + seq * 250_000, "actor": OPERATORS[seq % 4], "role": "operator",
                          "action": action, "object": obj.format(t=t), "ticket_id": t, "client": "10.0.3.17",
                          "outcome": "ok", "detail": "span=2026-11-20T10:00:00Z..2026-11-20T10:05:00Z" if seq % 5 == 1 else ""}
                digest = audit_store.entry_hash(fields, prev, key)
                rows.append({**fields, "prev_hash": prev, "hash": digest})
                prev = digest
            conn.execute(table.insert(), rows)
        conn.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(last_seq=entries, last_hash=prev))
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a trail that grew over months; without it the first reader of
        # a fresh bulk load also sets the hint bits of a million rows (about 3 s more here)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE audit_log"))
    engine.dispose()
    return prev


def verify_trail(scratch: Path, db: Database, args) -> dict:
    cfg = make_appliance(scratch, "verify", db)
    t = time.perf_counter()
    last = build_trail(cfg, args.entries)
    build_s = time.perf_counter() - t
    load0 = loadavg()
    t = time.perf_counter()
    done = subprocess.run([str(VMS), "audit", "verify", "--config", str(cfg)], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if done.returncode != 0 or last not in done.stdout or f" {args.entries} entries" not in done.stdout:
        raise SystemExit(f"vms audit verify did not confirm the chain (exit {done.returncode}): {done.stdout}{done.stderr}")
    # floor in the same run: only reading the rows, as verification does, without hashing
    engine = open_database(db.url)
    t = time.perf_counter()
    with engine.connect() as conn:
        read = sum(1 for _ in audit_store.iter_rows(conn))
    read_s = time.perf_counter() - t
    engine.dispose()
    assert read == args.entries + 1  # the verification recorded its checkpoint (one audit.anchor entry)
    walk = re.search(r"\(([\d.]+) s\)", done.stdout)
    return {"verify_entries": args.entries, "verify_build_s": build_s, "verify_1m_s": wall,
            "verify_walk_s": float(walk.group(1)) if walk else -1.0,
            "verify_read_only_s": read_s, "verify_us_per_entry": wall * 1e6 / args.entries, "verify_load_avg": max(load0, loadavg())}


# ---------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tickets", type=int, default=1000, help="tickets filed before the listing phase")
    ap.add_argument("--entries", type=int, default=1_000_000, help="audit entries for the verify phase")
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-api-", dir=args.dir))
    os.chmod(scratch, 0o700)
    dbs: list[Database] = []
    figures: dict = {"db": args.db, "clients": args.clients, "machine": machine()}
    try:
        if not args.skip_load:
            dbs.append(Database(args.db, scratch, "api"))
            figures |= api_load(scratch, dbs[-1], args)
        if not args.skip_verify:
            dbs.append(Database(args.db, scratch, "verify"))
            figures |= verify_trail(scratch, dbs[-1], args)
        emit(figures)
    finally:
        for db in dbs:
            db.drop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
