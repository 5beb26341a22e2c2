"""Why an audit append costs several times more in a tool call than in a loop: SQLite with cold caches.

    python3 bench/calls/sqlite_append_cache.py [--appends 1500]

Plain ``sqlite3``, no ringfence: the audit log's table, indexes and head row, and the statements of
one append on SQLite (``AuditLog._append_sqlite``: ``BEGIN IMMEDIATE``, read the head, insert, move
the head, ``COMMIT``), in WAL mode with ``synchronous=NORMAL`` and a passive checkpoint every 250
commits, as the server runs them. Each phase times 1,500 appends on the thread's CPU clock and
reports the median of all but the first 200 (a tenth, for fewer). Between two appends it touches N
bytes of other memory (a tool call's own work does that between its two appends), optionally after
another connection's insert into the same file (the app's write, which makes SQLite drop its page
cache), optionally with a pragma that might help.
"""

from __future__ import annotations

import argparse
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SCHEMA = """
CREATE TABLE ringfence_audit (seq INTEGER PRIMARY KEY, ts TEXT, kind TEXT, principal TEXT, tool TEXT,
    outcome TEXT, latency_ms REAL, payload TEXT, payload_salt TEXT, payload_hash TEXT, prev_hash TEXT,
    record_hash TEXT, erased_at TEXT, request_id TEXT, session_hash TEXT);
CREATE INDEX ix_ts ON ringfence_audit (ts);
CREATE INDEX ix_principal ON ringfence_audit (principal);
CREATE INDEX ix_request_id ON ringfence_audit (request_id);
CREATE INDEX ix_session_hash ON ringfence_audit (session_hash);
CREATE TABLE ringfence_audit_head (id INTEGER PRIMARY KEY, seq INTEGER, record_hash TEXT);
INSERT INTO ringfence_audit_head VALUES (1, 0, '0');
CREATE TABLE contacts (id INTEGER PRIMARY KEY, owner TEXT, name TEXT, email TEXT);
CREATE INDEX ix_owner ON contacts (owner);
"""
INSERT = ("INSERT INTO ringfence_audit (seq, ts, kind, principal, tool, outcome, latency_ms, payload, payload_salt, "
          "payload_hash, prev_hash, record_hash, request_id, session_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def append(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA busy_timeout = 0")
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    connection.execute("BEGIN IMMEDIATE")
    seq, record_hash = connection.execute("SELECT seq, record_hash FROM ringfence_audit_head WHERE id = 1").fetchone()
    connection.executemany(INSERT, [(seq + 1, "2026-12-07T21:00:00.000000Z", "tool.call", "user-1234", "add_contact",
                                     "ok", 1.5, '{"arguments": {}}', secrets.token_hex(16), secrets.token_hex(32),
                                     record_hash, secrets.token_hex(32), secrets.token_hex(8), secrets.token_hex(8))])
    connection.execute("UPDATE ringfence_audit_head SET seq = ?, record_hash = ? WHERE id = 1", (seq + 1, "x"))
    connection.execute("COMMIT")


def toucher(size: int) -> Callable[[], None]:
    """Writes one byte in every 64 of ``size`` bytes: evicts about that much from the CPU's caches."""
    memory = bytearray(size)

    def touch() -> None:
        for i in range(0, size, 64):
            memory[i] = (memory[i] + 1) & 255
    return touch


def phase(appends: int, touched: int, other_writer: bool, pragma: str | None) -> float:
    """Median µs of CPU per append, after the first few (the page cache filling)."""
    with tempfile.TemporaryDirectory(prefix="sqlite-append-") as folder:
        path = Path(folder) / "audit.db"
        log, app = connect(path), connect(path)
        log.executescript(SCHEMA)
        if pragma:
            log.execute(pragma)
        touch = toucher(touched)
        times = []
        for i in range(appends):
            if other_writer:
                app.execute("INSERT INTO contacts (owner, name, email) VALUES ('u', 'n', 'e')")
            touch()
            started = time.thread_time_ns()
            append(log)
            times.append(time.thread_time_ns() - started)
            if i % 250 == 249:
                log.execute("PRAGMA wal_checkpoint(PASSIVE)")
        log.close()
        app.close()
    return statistics.median(times[min(200, appends // 10):]) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=1500, help="appends per phase")
    appends = parser.parse_args().appends
    print("| memory touched between appends | another connection writes between | pragma | µs per append (median) |")
    print("| ---: | --- | --- | ---: |")
    for touched, other_writer, pragma in [
        (0, False, None), (0, True, None), (1 << 20, False, None), (4 << 20, False, None), (8 << 20, False, None),
        (4 << 20, True, None), (4 << 20, True, "PRAGMA cache_size = -64"),
        (4 << 20, True, "PRAGMA mmap_size = 268435456"),
    ]:
        cost = phase(appends, touched, other_writer, pragma)
        print(f"| {touched >> 20} MB | {'yes' if other_writer else 'no'} | {pragma or 'none'} | {cost:.1f} |")


if __name__ == "__main__":
    main()
