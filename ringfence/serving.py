"""Which database each app's tools use while it is served: kept here, apart from the declaration.

Serving (``ringfence/runtime.py``, and the ``ringfence user``/``purge`` commands that run the app's
hooks) binds a database to the app for as long as it runs; ``App.database`` reads it. The ``App``
object itself never changes once declared.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    from ringfence.store.database import Database

_serving: WeakKeyDictionary[object, Database] = WeakKeyDictionary()


@contextmanager
def serving(app: object, database: Database) -> Iterator[None]:
    """``app``'s tools and hooks use ``database`` inside this block."""
    if app in _serving:
        raise RuntimeError("this app is already being served")
    _serving[app] = database
    try:
        yield
    finally:
        del _serving[app]


def database_of(app: object) -> Database | None:
    """The database ``app`` is served with; ``None`` while it is not served."""
    return _serving.get(app)
