"""Durable storage through SQLAlchemy: SQLite in the data directory by default, PostgreSQL by URL."""

from ringfence.store.database import Database, Model

__all__ = ["Database", "Model"]
