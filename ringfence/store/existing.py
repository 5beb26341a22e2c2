"""Commands that work on a deployment's data refuse to start a new, empty one by accident.

Run in the wrong folder, opening SQLite would create an empty database there (``audit verify``
would then call the empty log intact) and writing a key would start a second key ring. These
checks create nothing. Only ``ringfence serve``, ``auth-server``, ``db upgrade`` and ``users add``
(an account before the first start) create a deployment's data.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from ringfence.config import ConfigError
from ringfence.store.database import Database

TABLE_PREFIX = "ringfence_"


class NoData(ConfigError):
    """There is no ringfence data where the command looked; the message says where to look."""


def no_data_in(data_dir: Path) -> NoData:
    return NoData(f"no ringfence data in {data_dir.resolve()}; run it where the app's data is, or pass --data-dir")


def in_data_folder(data_dir: Path, name: str) -> Path:
    """``data_dir / name``, which a server made there; :class:`NoData` if it does not exist."""
    path = data_dir / name
    if not path.exists():
        raise no_data_in(data_dir)
    return path


async def require_database(database: Database, data_dir: Path, database_url: str | None, *,
                           tables: bool = True) -> None:
    """The database must exist and (if ``tables``) hold ringfence's tables; :class:`NoData`
    otherwise. ``database_url`` is the one given, ``None`` for the default. Checking creates nothing."""
    missing = database.missing_sqlite_file()
    if missing is not None:
        if database_url is None:  # the default: SQLite in the data folder
            raise no_data_in(data_dir)
        raise NoData(f"there is no database at {missing} (check --database-url)")
    if not tables:
        return
    async with database.engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    if not any(name.startswith(TABLE_PREFIX) for name in tables):
        raise NoData("this database holds no ringfence tables (check --database-url)")
