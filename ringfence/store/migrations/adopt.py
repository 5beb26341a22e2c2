"""The baseline revision's operations: adopt what ``create_all`` made before migrations existed.

A table or index that is already there is kept as it is; only missing ones are created.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op


def create_table(name: str, *columns: Any, **options: Any) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *columns, **options)


def create_index(name: str, table: str, columns: list[str], **options: Any) -> None:
    if name not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}:
        op.create_index(name, table, columns, **options)
