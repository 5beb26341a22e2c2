"""``tools.lock``: each tool's contract and its SHA-256, so that a changed tool fails CI until reviewed.

A contract is everything a client or a model relies on: the name, title and description, the
input and output schemas, the annotations, the ``securitySchemes``, and the declaration they come
from (scopes, effect, returned data classes, ``open_world``, ``idempotent``). Its hash is SHA-256
over canonical JSON (sorted keys, no whitespace, UTF-8 kept as is), so it does not depend on dict
order, formatting or the process. The lock keeps the contract next to the hash so that a diff of
the file shows what changed; ``check_lock`` names the changed fields itself.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ringfence.app import App
from ringfence.review.tools import ReviewedTool, reviewed_tools
from ringfence.ui.meta import apps_csp, apps_uri, served_widgets
from ringfence.widgets import Widget

LOCK_FORMAT = "ringfence-tools-lock"
LOCK_VERSION = 1
MAX_DIFF_LINES = 40


class LockError(Exception):
    """The lock file is missing or cannot be read; the message says which in one line."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class LockDifference:
    """One tool that differs from the lock: added, removed, or changed in the named fields."""

    tool: str
    kind: Literal["added", "removed", "changed"]
    fields: tuple[str, ...] = ()
    diff: str = ""

    def summary(self) -> str:
        if self.kind == "changed":
            return f"{self.tool}: changed {', '.join(self.fields)}"
        return f"{self.tool}: {self.kind}"

    def to_dict(self) -> dict[str, object]:
        return {"tool": self.tool, "kind": self.kind, "fields": list(self.fields), "diff": self.diff}


def tool_contract(tool: ReviewedTool, widgets: Mapping[str, Widget] | None = None) -> dict[str, Any]:
    """What a client and a model rely on for one tool, as plain JSON values (``widgets``: those the app serves)."""
    listed = tool.listed.model_dump(mode="json", by_alias=True, exclude_none=True)
    spec = tool.spec
    contract = {
        "name": spec.name,
        "title": listed.get("title"),
        "description": listed.get("description"),
        "input_schema": listed.get("inputSchema"),
        "output_schema": listed.get("outputSchema"),
        "annotations": listed.get("annotations"),
        "security_schemes": (listed.get("_meta") or {}).get("securitySchemes"),
        "scopes": sorted(spec.scopes),
        "effect": spec.effect,
        "returns": sorted(spec.returns),
        "open_world": spec.open_world,
        "idempotent": spec.idempotent,
    }
    # Added only when set, so a lock written before they existed still matches.
    if spec.irreversible and spec.effect != "destructive":
        contract["irreversible"] = True
    if spec.reaches:
        contract["reaches"] = sorted(spec.reaches)
    if spec.unsafe_send_undeclared_personal_data:
        contract["unsafe_send_undeclared_personal_data"] = True
    if spec.provider_scopes:  # it acts as the person elsewhere: a change to that is a change of contract
        contract["provider_scopes"] = {name: sorted(scopes) for name, scopes in sorted(spec.provider_scopes.items())}
    meta = listed.get("_meta") or {}
    if "ui" in meta:
        shown = [widget for widget in (widgets or {}).values() if apps_uri(widget) == meta["ui"].get("resourceUri")]
        contract["widget"] = {
            "meta": {key: value for key, value in meta.items() if key == "ui" or key.startswith("openai/")},
            "shows": [{"csp": apps_csp(widget), "redirect": list(widget.redirect), "domain": widget.domain}
                      for widget in shown],
        }
    return contract


def default_lock_path(target: str) -> Path:
    """``tools.lock`` next to the app's file; for a module target, next to the module's file."""
    location = target.partition(":")[0]
    if location.endswith(".py") or "/" in location or Path(location).is_file():
        return Path(location).parent / "tools.lock"
    spec = importlib.util.find_spec(location)
    if spec is not None and spec.origin:
        return Path(spec.origin).parent / "tools.lock"
    return Path("tools.lock")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def contract_hash(contract: dict[str, Any]) -> str:
    """``sha256:`` and the hex SHA-256 of the canonical JSON of a contract."""
    return "sha256:" + hashlib.sha256(canonical_json(contract)).hexdigest()


def lock_document(app: App) -> dict[str, Any]:
    """The content of ``tools.lock`` for ``app``."""
    widgets = served_widgets(app.widgets, app.tools.values(), app.widget_domain)
    contracts = {tool.name: tool_contract(tool, widgets) for tool in reviewed_tools(app)}
    entries = {name: {"sha256": contract_hash(contract), "contract": contract} for name, contract in contracts.items()}
    return {
        "format": LOCK_FORMAT,
        "version": LOCK_VERSION,
        "app": app.name,
        # One digest over all tools, to publish or compare in a single value.
        "digest": contract_hash({name: entry["sha256"] for name, entry in entries.items()}),
        "tools": entries,
    }


def write_lock(app: App, path: Path) -> dict[str, Any]:
    """Write ``tools.lock`` for ``app`` (sorted, indented, one entry per tool) and return its content."""
    document = lock_document(app)
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")
    return document


def read_lock(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LockError(f"there is no lock file at {path}", missing=True) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LockError(f"cannot read the lock file {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != LOCK_FORMAT:
        raise LockError(f"{path} is not a ringfence tools.lock")
    if document.get("version") != LOCK_VERSION:
        raise LockError(
            f"{path} has lock format version {document.get('version')!r}; this ringfence reads {LOCK_VERSION}"
        )
    if not isinstance(document.get("tools"), dict):
        raise LockError(f"{path} has no tools")
    return document


def check_lock(app: App, path: Path) -> list[LockDifference]:
    """How the app's tools differ from the lock at ``path``; empty when the lock is up to date.

    Raises :class:`LockError` when there is no lock or it cannot be read.
    """
    current = lock_document(app)["tools"]
    locked: dict[str, Any] = read_lock(path)["tools"]
    differences: list[LockDifference] = []
    for name in sorted(locked.keys() | current.keys()):
        if name not in locked:
            differences.append(LockDifference(name, "added"))
        elif name not in current:
            differences.append(LockDifference(name, "removed"))
        else:
            old = locked[name].get("contract") if isinstance(locked[name], dict) else None
            new = current[name]["contract"]
            if not isinstance(old, dict):
                differences.append(LockDifference(name, "changed", ("contract",), "the locked entry has no contract"))
            elif locked[name].get("sha256") != current[name]["sha256"] or old != new:
                fields = tuple(sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key)))
                if not fields:  # the hash alone was edited
                    fields = ("sha256",)
                differences.append(LockDifference(name, "changed", fields, _diff(old, new, fields)))
    return differences


def _diff(old: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...]) -> str:
    lines: list[str] = []
    for field in fields:
        if field not in old and field not in new:
            continue
        before = json.dumps(old.get(field), sort_keys=True, indent=2, ensure_ascii=False).splitlines()
        after = json.dumps(new.get(field), sort_keys=True, indent=2, ensure_ascii=False).splitlines()
        lines.extend(difflib.unified_diff(before, after, f"locked {field}", f"current {field}", n=1, lineterm=""))
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"... ({len(lines) - MAX_DIFF_LINES} more lines)"]
    return "\n".join(lines)
