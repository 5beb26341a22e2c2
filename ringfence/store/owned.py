"""Rows that belong to one person: the ``Owned`` declaration, and the session that keeps to them.

A table declared ``class ContactRow(Model, Owned)`` gets an ``owner`` column (the token subject).
Every session a :class:`~ringfence.store.database.Database` opens is scoped to one owner for its
whole life (:class:`OwnerScope`): the caller of the tool now running, or the owner the code names.
In that session the ORM reads only that owner's rows (every SELECT, ``session.get``, relationship
and column loads, ORM-enabled UPDATE and DELETE) and writes only theirs (new rows are stamped;
writing a row of someone else, or changing ``owner``, raises :class:`OwnershipError`). A session
with no owner finds no owned rows and writes none: anonymous calls and code outside a call fail
closed. Because a session's owner never changes, its identity map holds only that owner's rows.

Statements the ORM criteria cannot reach are refused on owned tables (unless the scope is every
owner): the ``Table`` named where no ORM entity of it shares its FROM (a Core statement, a subquery
or alias beside the model, a DML target), and upserts (``ON CONFLICT``).
PostgreSQL enforces the same in the database (:mod:`ringfence.store.row_security`), so raw SQL
(``text()``) through the session stays inside the owner's rows too. SQLite has no row-level
security: there raw SQL is not scoped.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnClause, ColumnElement, FromClause, Select, String, Table, event, false, inspect
from sqlalchemy.orm import (
    LoaderCriteriaOption,
    Mapped,
    Mapper,
    ORMExecuteState,
    Session,
    UOWTransaction,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import AliasedReturnsRows, TableClause

from ringfence.principal import optional_principal

OWNER_COLUMN = "owner"
MAX_OWNER_LENGTH = 255
SCOPE_KEY = "ringfence.owner_scope"  # where a session keeps its scope, in ``Session.info``
OWNED_MARK = "ringfence.owned"  # in the ``owner`` column's ``info``: how a bare Table is known to be owned
BARE_TABLE = ("a statement on an owned table goes through its model (delete(Note), not delete(Note.__table__); "
              "aliased(Note), not Note.__table__.alias()), so that the owner criteria reach it")


class Owned:
    """Mixin for an app table whose rows each belong to one person: ``class ContactRow(Model, Owned)``.

    Adds the ``owner`` column (the token subject, as ``current_principal().subject``; indexed, not
    null). Sessions read and write only their owner's rows; ``owner`` is filled in on insert.
    """

    owner: Mapped[str] = mapped_column(String(MAX_OWNER_LENGTH), index=True, nullable=False,
                                       info={OWNED_MARK: True})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _OWNED_MODELS.add(cls)


_OWNED_MODELS: weakref.WeakSet[type] = weakref.WeakSet()  # every Owned model: their tables' names


def _owned_table_names() -> set[str]:
    return {table.name for model in list(_OWNED_MODELS)
            if isinstance(table := getattr(model, "__table__", None), Table)}


class OwnershipError(Exception):
    """A session was asked for what its owner scope cannot keep to: another owner's row, a change of
    owner, a statement the owner criteria cannot reach. A defect of the app's code, not of the caller's
    request: a tool that raises it answers a generic failure and the server logs the details. (Not a
    ``PermissionError``: handlers of ``OSError`` would take it for a file or connection failure.)"""


@dataclass(frozen=True)
class OwnerScope:
    """Whose rows a session works on: one ``owner``, nobody (``None``), or everybody (``all_owners``)."""

    owner: str | None
    all_owners: bool = False

    @classmethod
    def resolve(cls, owner: str | None, unsafe_all_owners: bool) -> OwnerScope:
        """The scope a session asked for: ``owner`` if named, every owner if that was given up,
        else the verified caller of the tool now running (nobody outside a call or when anonymous)."""
        if unsafe_all_owners:
            if owner is not None:
                raise ValueError("give either owner= or unsafe_all_owners=True, not both")
            return cls(None, all_owners=True)
        if owner is None:
            principal = optional_principal()
            if principal is None:
                return cls(None)
            if len(principal.subject) > MAX_OWNER_LENGTH:  # it would not fit the owner column
                raise OwnershipError(f"the caller's token subject is longer than {MAX_OWNER_LENGTH} characters: "
                                     "it cannot own rows")
            return cls(principal.subject)
        if not isinstance(owner, str) or not owner or len(owner) > MAX_OWNER_LENGTH:
            raise ValueError(f"owner must be a token subject: a non-empty string of at most {MAX_OWNER_LENGTH} "
                             "characters")
        return cls(owner)

    def stamp(self) -> str:
        """The owner of a row written without one; refused when the scope names no single owner."""
        if self.all_owners:
            raise OwnershipError("a session over every owner writes only rows that name their owner")
        if self.owner is None:
            raise OwnershipError("this session has no owner (no caller, and none named with "
                                 "session(owner=...)): it cannot write a row of an owned table")
        return self.owner

    def check(self, owner: object) -> None:
        """Refuse a row of another owner (any owner goes in an unscoped session)."""
        if not self.all_owners and owner != self.stamp():
            raise OwnershipError("this session cannot write a row owned by someone else")


def scope_of(session: Session) -> OwnerScope:
    """The session's scope; a session opened without one is scoped to nobody (fail closed)."""
    scope = session.info.get(SCOPE_KEY)
    return scope if isinstance(scope, OwnerScope) else OwnerScope(None)


class ScopedSession(Session):
    """The ORM session every :class:`~ringfence.store.database.Database` session uses: owned rows
    are read and written only within its :class:`OwnerScope`."""

    # The legacy bulk methods skip both the flush events and do_orm_execute: refused on owned tables.
    def bulk_save_objects(self, objects: Any, *args: Any, **kwargs: Any) -> None:
        objects = list(objects)
        self._refuse_legacy_bulk(*(type(row) for row in objects))
        super().bulk_save_objects(objects, *args, **kwargs)

    def bulk_insert_mappings(self, mapper: Any, *args: Any, **kwargs: Any) -> None:
        self._refuse_legacy_bulk(mapper)
        super().bulk_insert_mappings(mapper, *args, **kwargs)

    def bulk_update_mappings(self, mapper: Any, *args: Any, **kwargs: Any) -> None:
        self._refuse_legacy_bulk(mapper)
        super().bulk_update_mappings(mapper, *args, **kwargs)

    def _refuse_legacy_bulk(self, *entities: Any) -> None:
        if scope_of(self).all_owners:
            return
        if any(isinstance(getattr(entity, "class_", entity), type)
               and issubclass(getattr(entity, "class_", entity), Owned) for entity in entities):
            raise OwnershipError("the legacy bulk methods skip the owner checks; on an owned table use "
                                 "session.add_all() or insert(Model) with the rows as parameters")


@event.listens_for(ScopedSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    scope = scope_of(state.session)
    if scope.all_owners:
        return
    _refuse_bare_tables(state.statement)
    if state.is_insert:
        _scope_insert(state, scope)
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return  # text(): only PostgreSQL's row-level security scopes it
    # SQLAlchemy's documented pattern: the criterion joins every SELECT (and the loads it makes),
    # UPDATE and DELETE that touches an owned entity, joined, aliased or not.
    state.statement = state.statement.options(_owner_criteria(scope.owner))
    if state.is_update:
        _scope_update(state, scope)


@lru_cache(maxsize=4096)
def _owner_criteria(owner: str | None) -> LoaderCriteriaOption:
    """The loader criteria of ``owner``'s rows (none for ``None``), made once per owner and reused:
    an option is immutable, and which entities it reaches is resolved at each statement's compilation."""
    if owner is None:
        return with_loader_criteria(Owned, lambda cls: false(), include_aliases=True)
    return with_loader_criteria(Owned, lambda cls: cls.owner == owner, include_aliases=True)


def is_owned_table(table: object) -> bool:
    """Whether ``table`` is the ``Table`` of an :class:`Owned` model (annotated or not)."""
    if not isinstance(table, Table):
        return False
    owner = table.c.get(OWNER_COLUMN)
    return owner is not None and bool(owner.info.get(OWNED_MARK))


def _refuse_bare_tables(statement: Any) -> None:
    """Refuse a statement that reaches an owned table other than through an ORM entity of it: the
    owner criteria join ORM entities only, so that table would be read or written unscoped.

    Each SELECT, however nested (a subquery, ``exists()``, ``in_(select(...))``, a scalar subquery,
    each part of a UNION), is judged on its own: an owned table named bare there (``Note.__table__``
    or one of its columns) must be the table of an entity in that same SELECT, whose FROM it then
    is, scoped (``session.get`` and the ORM's own clauses name columns so). What is always refused:
    the bare table as the target of an UPDATE, DELETE or INSERT, and the bare table under an alias
    (``Note.__table__.alias()``: a FROM of its own; ``aliased(Note)`` is an entity).
    """
    target = getattr(statement, "table", None)
    if isinstance(statement, UpdateBase) and is_owned_table(target) and not _entity_of(target):
        raise OwnershipError(BARE_TABLE)
    _check_select_scope(statement)


def _check_select_scope(scope: Any) -> None:
    """One SELECT's (or the whole DML statement's) bare owned tables against its entities; nested
    SELECTs are checked as scopes of their own."""
    bare: set[Any] = set()  # owned tables, and aliases of them, named without an entity
    entities: set[Any] = set()  # what the entities select from: their owned tables, an aliased(Note)'s alias
    stack = [scope]
    while stack:
        element = stack.pop()
        entity = _entity_of(element)
        if entity is not None:
            entities.update(_owned_tables(entity.mapper))
            entities.add(entity.selectable)
        elif element is not scope and isinstance(element, Select):
            _check_select_scope(element)
            continue
        elif isinstance(element, AliasedReturnsRows) and is_owned_table(element.element):
            bare.add(element)  # a FROM of its own: allowed only as an aliased(Note)'s
        elif isinstance(element, FromClause | ColumnElement):
            # Only a Table, and a column of one, name a table: ``table`` is a ColumnClause's (a
            # Column's) attribute, None on the other named columns, absent on other elements.
            table = element if isinstance(element, TableClause) else (
                element.table if isinstance(element, ColumnClause) else None)
            if is_owned_table(table):
                bare.add(table._deannotate())  # type: ignore[union-attr]
            elif (isinstance(table, TableClause) and not isinstance(table, Table)
                  and table.name in _owned_table_names()):
                raise OwnershipError(BARE_TABLE)  # table("notes"): a FROM of its own, like raw SQL
        stack.extend(element.get_children())
    if bare - entities:
        raise OwnershipError(BARE_TABLE)


def _entity_of(element: Any) -> Any:
    """The ORM entity an element was made from (``parententity``), or None for a Core element."""
    return getattr(element, "_annotations", {}).get("parententity")


def _owned_tables(mapper: Mapper[Any]) -> list[Table]:
    """The owned tables a mapper's entity reaches (its own, and a parent's with joined inheritance)."""
    return [table for table in mapper.tables if is_owned_table(table)]


def _owned_target(state: ORMExecuteState) -> type[Owned] | None:
    mapper = state.bind_mapper
    entity = mapper.class_ if mapper is not None else None
    return entity if isinstance(entity, type) and issubclass(entity, Owned) else None


def _scope_insert(state: ORMExecuteState, scope: OwnerScope) -> None:
    """ORM INSERT statements: each row's owner stamped or checked. Rows given inside the statement
    (``.values()``, ``from_select``) cannot be checked, so they are refused."""
    if _owned_target(state) is None:
        return
    statement: Any = state.statement  # SQLAlchemy keeps .values() rows in private attributes (tests/owned)
    if statement._values or statement._multi_values or statement.select is not None:
        raise OwnershipError("an owned table takes new rows through session.add(), or insert(Model) with the "
                             "rows as parameters, so that each row's owner can be checked")
    # ON CONFLICT DO UPDATE would rewrite the existing row of any owner; the row it stamps is the new one.
    if getattr(statement, "_post_values_clause", None) is not None:
        raise OwnershipError("an upsert (ON CONFLICT) on an owned table could reach another owner's row: "
                             "read the caller's row, then add or change it")
    parameters = state.parameters
    rows = parameters if isinstance(parameters, list) else [parameters or {}]
    stamped = [_stamped(row, scope) for row in rows]
    state.parameters = stamped if isinstance(parameters, list) else stamped[0]


def _stamped(row: Mapping[str, Any], scope: OwnerScope) -> dict[str, Any]:
    if row.get(OWNER_COLUMN) is None:
        return {**row, OWNER_COLUMN: scope.stamp()}
    scope.check(row[OWNER_COLUMN])
    return dict(row)


def _scope_update(state: ORMExecuteState, scope: OwnerScope) -> None:
    """ORM UPDATE statements: ``owner`` never changes; an UPDATE by primary key (a list of rows as
    parameters, which loader criteria do not reach) gets the owner in its WHERE clause."""
    entity = _owned_target(state)
    if entity is None:
        return
    statement: Any = state.statement
    inline = statement._values or {}  # what .values() / .ordered_values() set, by column (private: tests/owned)
    rows = state.parameters if isinstance(state.parameters, list) else [state.parameters or {}]
    if OWNER_COLUMN in {getattr(key, "key", key) for key in inline} or any(OWNER_COLUMN in row for row in rows):
        raise OwnershipError("the owner of a row cannot change")
    if state.is_executemany:
        state.statement = statement.where(entity.owner == scope.owner if scope.owner is not None else false())
        # SQLAlchemy cannot synchronize objects in the session with extra WHERE criteria on this form.
        state.update_execution_options(synchronize_session=None)


@event.listens_for(ScopedSession, "before_flush")
def _scope_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    scope = scope_of(session)
    for row in session.new:
        if isinstance(row, Owned):
            if row.owner is None:
                row.owner = scope.stamp()
            else:
                scope.check(row.owner)
    for row in session.dirty:
        if isinstance(row, Owned) and not scope.all_owners:
            if inspect(row).attrs[OWNER_COLUMN].history.deleted:
                raise OwnershipError("the owner of a row cannot change")
            scope.check(row.owner)
    for row in session.deleted:
        if isinstance(row, Owned):
            scope.check(row.owner)


@event.listens_for(ScopedSession, "before_attach")
def _scope_attach(session: Session, row: object) -> None:
    """A row loaded elsewhere (``session.add``, ``merge(load=False)``) joins only a session of its
    owner, so ``session.get`` never finds another owner's row in the identity map."""
    if not isinstance(row, Owned):
        return
    state = inspect(row)
    if state.key is not None:  # persistent or detached: it was read from the database
        scope_of(session).check(state.dict.get(OWNER_COLUMN))
