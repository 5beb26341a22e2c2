"""The chain as written: what a record holds, how its hash is made, and that it verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
import math

import pytest

from ringfence.audit.log import AuditLog
from ringfence.audit.records import GENESIS_HASH, EventKind, canonical_json
from tests.audit.conftest import fill

pytestmark = pytest.mark.anyio


async def test_appended_records_read_back_as_written_and_verify(log: AuditLog) -> None:
    written = [
        await log.append(EventKind.AUTH_FAILURE, principal="anonymous", outcome="invalid_token"),
        await log.append(EventKind.TOOL_CALL, principal="user-1", tool="search_contacts", outcome="ok",
                         latency_ms=12.5, payload={"query": "grace", "results": 2}),
        await log.append(EventKind.CONFIRMATION_DECLINED, principal="user-1", tool="delete_contact",
                         outcome="declined", payload={"contact_id": 7}),
    ]
    report = await log.verify()
    read = [record.as_json() async for record in log.query()]
    assert report.ok, report.summary()
    assert (report.records, report.last_seq) == (3, 3)
    assert read == [record.as_json() for record in written]
    assert [record.seq for record in written] == [1, 2, 3]


async def test_record_hash_is_sha256_of_the_canonical_json_of_its_fields(log: AuditLog) -> None:
    """record_hash = SHA-256(canonical JSON of seq, ts, kind, principal, tool, outcome, latency_ms,
    payload_hash, prev_hash); payload_hash = HMAC-SHA256(key: the record's salt, canonical JSON of the payload)."""
    first, second = await fill(log, 2)

    def by_hand(record) -> str:  # type: ignore[no-untyped-def]
        fields = {"seq": record.seq, "ts": record.ts, "kind": record.kind, "principal": record.principal,
                  "tool": record.tool, "outcome": record.outcome, "latency_ms": record.latency_ms,
                  "payload_hash": record.payload_hash, "prev_hash": record.prev_hash}  # fmt: skip
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(canonical).hexdigest()

    assert first.prev_hash == GENESIS_HASH == "0" * 64
    assert second.prev_hash == first.record_hash
    assert [by_hand(first), by_hand(second)] == [first.record_hash, second.record_hash]
    assert second.payload_salt is not None and len(bytes.fromhex(second.payload_salt)) == 16
    assert second.payload_salt != first.payload_salt
    assert second.payload_hash == hmac.new(bytes.fromhex(second.payload_salt), b'{"query":"grace 2"}',
                                           hashlib.sha256).hexdigest()  # fmt: skip


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_unicode_as_utf8() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é☃"}) == '{"a":"é☃","b":[1,2.5]}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": math.nan})


async def test_payloads_round_trip_exactly_on_both_databases(log: AuditLog) -> None:
    """What is hashed is what the database gives back: unicode, NUL, big and small numbers, nesting."""
    payload = {"text": "Grüße 🙂 \u0000 \"quoted\"", "big": 2**62, "small": 1e-300, "neg_zero": -0.0,
               "nested": [{"a": None, "b": True}, [], {}], "tuple": (1, 2), "1": "int key"}  # fmt: skip
    record = await log.append("tool.call", principal="ü-1", tool="t", outcome="ok", latency_ms=3, payload=payload)
    [read] = [r async for r in log.query()]
    assert read.payload == record.payload == json.loads(canonical_json(payload))
    assert read.latency_ms == 3.0
    assert (await log.verify()).ok


@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "ToolCall"}, "area.event"),
    ({"principal": ""}, "principal"),
    ({"outcome": "x" * 65}, "outcome"),
    ({"tool": "a\x00b"}, "NUL"),
    ({"latency_ms": -1}, "latency_ms"),
    ({"payload": {"x": math.inf}}, "JSON"),
    ({"payload": 1.0}, "JSON object"),  # SQLite would give back the integer 1
])  # fmt: skip
async def test_append_refuses_what_it_could_not_store_faithfully(log: AuditLog, fields: dict, message: str) -> None:
    await fill(log, 1)
    values = {"kind": "tool.call", "principal": "p", "outcome": "ok", **fields}
    with pytest.raises((ValueError, TypeError), match=message):
        await log.append(values.pop("kind"), **values)
    assert [r.seq async for r in log.query()] == [1]
