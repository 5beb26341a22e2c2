"""Property: whatever the payloads, changing any one character of any stored field is detected,
and the changed record is the one named. (SQLite, where every column can be rewritten as text.)"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import column as sql_column
from sqlalchemy import select, table, update

from ringfence.audit.log import AuditLog
from ringfence.audit.records import canonical_json
from ringfence.store.database import Database

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
names = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), min_size=1, max_size=12)
entries = st.fixed_dictionaries({
    "principal": names, "tool": st.none() | names, "outcome": st.sampled_from(["ok", "refused", "error"]),
    "latency_ms": st.none() | st.floats(0, 1e6),
    "payload": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=4),
})  # fmt: skip
TEXT_COLUMNS = ["ts", "kind", "principal", "tool", "outcome", "payload", "payload_salt", "payload_hash", "prev_hash",
                "record_hash"]


def change_one_character(value: str | None, data: st.DataObject) -> str:
    if not value:
        return "x"
    at = data.draw(st.integers(0, len(value) - 1), label="position")
    # Drawn without looking at the value: timestamps and hashes differ from run to run.
    replacement = data.draw(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), label="char")
    if replacement == value[at]:
        replacement = "y" if replacement == "x" else "x"
    return value[:at] + replacement + value[at + 1:]


def same_json_value(stored: str | None, changed: str) -> bool:
    """A change of JSON syntax only (an escape spelled differently, other white space) changes no data."""
    if stored is None:
        return False
    try:
        return canonical_json(json.loads(changed)) == canonical_json(json.loads(stored))
    except ValueError:
        return False


async def scenario(records: list[dict[str, Any]], data: st.DataObject, folder: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{folder / 'ringfence.db'}")
    try:
        log = AuditLog(database, folder)
        written = [await log.append("tool.call", **record) for record in records]
        assert [r.payload async for r in log.query()] == [json.loads(canonical_json(r["payload"])) for r in records]
        assert (await log.verify()).ok

        seq = data.draw(st.integers(1, len(written)), label="record")
        column = data.draw(st.sampled_from([*TEXT_COLUMNS, "latency_ms", "seq"]), label="column")
        # Untyped columns: values go to and from SQLite as stored, the payload as its JSON text.
        raw = table("ringfence_audit", sql_column("seq"), sql_column(column))
        async with database.engine.begin() as connection:
            stored = (await connection.execute(select(raw.c[column]).where(raw.c.seq == seq))).scalar()
            if column == "seq":
                changed: object = len(written) + data.draw(st.integers(1, 5), label="new seq")
            elif column == "latency_ms":
                changed = (stored or 0.0) + data.draw(st.sampled_from([0.001, 1.0, -0.5, 1e6]), label="delta")
            else:
                changed = change_one_character(stored, data)
            await connection.execute(update(raw).where(raw.c.seq == seq).values({column: changed}))

        report = await log.verify()
        if column == "payload" and same_json_value(stored, str(changed)):
            assert report.ok, report.summary()
        else:
            assert report.damage is not None, f"changing {column} of #{seq} went unnoticed"
            assert report.damage.seq == seq, report.summary()
    finally:
        await database.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(entries, min_size=1, max_size=4), data=st.data())
def test_changing_any_character_of_any_record_is_detected_at_that_record(records: list[dict], data: st.DataObject
                                                                          ) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(scenario(records, data, Path(folder)))
