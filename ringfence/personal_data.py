"""Personal data: what is held about people, declared by whoever holds it.

- The app declares its own records once (:class:`PersonalData`, ``App.personal_data``): the hooks
  are how deletion, export and the purge reach them; ringfence never guesses at the app's tables.
  Every hook receives the token subject (``current_principal().subject`` when the records were
  written).
- Each ringfence package that stores personal data registers :class:`Holdings` for its own tables
  (``ringfence/<package>/holdings.py``); ``ringfence.privacy`` iterates them, the app's declarations
  among them, and never reads another package's tables.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, Required, TypedDict, Unpack

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


class PersonalDataDeclaration(TypedDict, total=False):
    """What an app says of one kind of record it keeps about people (``app.personal_data(name, ...)``):
    ``export(subject)`` returns them as JSON-able data; ``delete(subject)`` removes them and returns how
    many; with ``keep_days``, ``purge(older_than)`` removes records older than the cut-off."""

    description: Required[str]
    data_classes: Required[Iterable[str]]
    export: Required[ExportHook]
    delete: Required[DeleteHook]
    keep_days: int | None
    purge: PurgeHook | None


def declare_personal_data(name: str, **declaration: Unpack[PersonalDataDeclaration]) -> PersonalData:
    """Check one declaration; every problem is a :class:`DeclarationError` naming the fix."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DeclarationError(f"personal data name {name!r} must be 1-64 lower-case letters, digits or '_'")
    unknown = sorted(set(declaration) - set(PersonalDataDeclaration.__annotations__))
    if unknown:
        raise DeclarationError(f"personal data {name!r}: unknown declaration {', '.join(unknown)}; it declares "
                               f"{', '.join(PersonalDataDeclaration.__annotations__)}")
    description, data_classes = declaration.get("description"), declaration.get("data_classes", ())
    export, delete = declaration.get("export"), declaration.get("delete")
    keep_days, purge = declaration.get("keep_days"), declaration.get("purge")
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
                        export=export, delete=delete, keep_days=keep_days, purge=purge)  # type: ignore[arg-type]


class UnknownSubject(LookupError):
    """Nothing is held about the subject; nothing was changed."""


class DeletionIncomplete(RuntimeError):
    """A deletion stopped part-way; what was deleted stays deleted, and running it again finishes it."""

    def __init__(self, subject: str, step: str) -> None:
        super().__init__(f"the deletion of subject {subject!r} stopped at {step}; what was deleted stays deleted: "
                         f"run `ringfence user delete TARGET {subject}` again to finish")
        self.subject = subject
        self.step = step


class SubjectRecords(Protocol):
    """Everything held about one person, across ringfence and the app (ringfence/privacy/subjects.py);
    what the account pages use to export it and delete it, without importing the privacy package."""

    async def export(self, subject: str) -> dict[str, Any]: ...

    async def delete(self, subject: str, *, channel: str = "cli") -> dict[str, int]: ...


def export_time(epoch: int | None) -> str | None:
    """An epoch time as the export document writes it (ISO 8601, UTC)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


@dataclass(frozen=True)
class Retention:
    """How long each kind of ringfence's data is kept past the end of its use (``RINGFENCE_RETENTION_*``)."""

    authorization_code_hours: int = 24  # after expiry: a replayed code still revokes its tokens
    refresh_token_days: int = 7  # after the whole family expired or was revoked
    confirmation_hours: int = 1  # after expiry (holds the preview text)
    idle_client_days: int = 30  # a registered client with no grant; 0: kept
    audit_payload_days: int = 365  # the chain itself is kept


@dataclass(frozen=True)
class RetentionRule:
    """One kind of stored data: ``kind`` names it in purge counts, ``kept`` says how long, with the setting."""

    kind: str
    what: str
    kept: str
    setting: str | None = None


# One kind's purge: its name in the counts, and the step that deletes (or, in a dry run, counts) what is
# past retention; ``None``: not counted (a hook cannot be asked to count).
PurgeStep = tuple[str, Callable[[], Awaitable[int | None]]]


class Holdings(Protocol):
    """What one package keeps about people, registered by the package that owns the tables.

    Deletion and export name a person by token subject; every method is safe to run again after a
    failure part-way, and on several instances at once. Next to it, the package's ``retention(settings)``
    says how long each kind is kept under a :class:`Retention` (the privacy disclosure's table), with
    no database needed.
    """

    def purge_steps(self, kept: Retention, moment: float, *, dry_run: bool) -> list[PurgeStep]:
        """What is past retention at ``moment`` (epoch seconds), one step per kind."""
        ...

    async def holds(self, subject: str) -> bool:
        """Whether anything at all is kept about ``subject``."""
        ...

    async def export(self, subject: str) -> dict[str, Any]:
        """Sections of the person's export document (JSON-able, no secrets: no hashes, no tokens)."""
        ...

    async def delete(self, subject: str) -> dict[str, int]:
        """Remove what is kept about ``subject``; rows removed per kind."""
        ...
