"""The app's own personal data, declared once: what it is, how long it is kept, and its hooks.

The hooks are how deletion, export and the purge reach the app's records: ringfence never guesses
at the app's tables. Every hook receives the token subject (``current_principal().subject`` when
the records were written).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ringfence.declaration import DATA_CLASSES, DeclarationError

ExportHook = Callable[[str], Awaitable[Any]]
DeleteHook = Callable[[str], Awaitable[int]]
PurgeHook = Callable[[datetime], Awaitable[int]]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class PersonalData:
    """One kind of record the app keeps about a person.

    ``keep_days`` ``None``: kept until the person deletes it (or their account is deleted);
    otherwise ``purge(older_than)`` removes records older than that, on the purge schedule.
    """

    name: str
    description: str
    data_classes: tuple[str, ...]
    export: ExportHook
    delete: DeleteHook
    keep_days: int | None = None
    purge: PurgeHook | None = None

    @property
    def retention(self) -> str:
        if self.keep_days is None:
            return "until the user deletes it, or deletes their account"
        return f"{self.keep_days} days, or until the user deletes it"


def declare_personal_data(
    name: str,
    *,
    description: str,
    data_classes: Iterable[str],
    export: ExportHook,
    delete: DeleteHook,
    keep_days: int | None = None,
    purge: PurgeHook | None = None,
) -> PersonalData:
    """Check one declaration; every problem is a :class:`DeclarationError` naming the fix."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeclarationError(f"personal data name {name!r} must be 1-64 lower-case letters, digits or '_'")
    if not isinstance(description, str) or not description.strip():
        raise DeclarationError(f"personal data {name!r} needs a description: the privacy disclosure shows it")
    if isinstance(data_classes, str):
        raise DeclarationError(f"personal data {name!r}: data_classes= takes a list, not a string")
    classes = tuple(sorted(set(data_classes)))
    unknown = sorted(set(classes) - set(DATA_CLASSES))
    if unknown or not classes:
        raise DeclarationError(
            f"personal data {name!r} needs data_classes= from {', '.join(DATA_CLASSES)} (got {list(classes)})"
        )
    for hook_name, hook in (("export", export), ("delete", delete)):
        if not inspect.iscoroutinefunction(hook):
            raise DeclarationError(
                f"personal data {name!r} needs {hook_name}=, an async function taking the user's subject: "
                "deletion and export must reach every record"
            )
    if keep_days is not None:
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or not 1 <= keep_days <= 36500:
            raise DeclarationError(f"personal data {name!r}: keep_days= must be a whole number of days (1-36500)")
        if not inspect.iscoroutinefunction(purge):
            raise DeclarationError(
                f"personal data {name!r} keeps records {keep_days} days and needs purge=, an async function "
                "taking the cut-off time and removing older records"
            )
    elif purge is not None:
        raise DeclarationError(f"personal data {name!r}: purge= needs keep_days=, how long records are kept")
    return PersonalData(name=name, description=" ".join(description.split()), data_classes=classes,
                        export=export, delete=delete, keep_days=keep_days, purge=purge)
