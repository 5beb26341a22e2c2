"""Durable storage through SQLAlchemy: SQLite in the data directory by default, PostgreSQL by URL."""
