"""Alembic migrations of ringfence's own tables (``ringfence_*``); applied by :mod:`ringfence.store.schema`.

To change a model in ringfence (a column, an index, a new ``InternalModel`` table):

1. change the model (a new module of models also goes into ``schema.MODEL_MODULES``);
2. generate the revision from the difference between the models and a database at the current
   head: ``python -m ringfence.store.migrations "add the foo column"`` (the equivalent of
   ``alembic revision --autogenerate``; it writes ``versions/NNNN_add_the_foo_column.py``);
3. read the file, fix what autogenerate cannot know (renames, data to move), and run
   ``pytest tests/store/test_migrations.py``: it fails while models and migrations disagree,
   on SQLite and on PostgreSQL.

Revisions run on both SQLite and PostgreSQL: autogenerate writes ``batch_alter_table`` blocks,
which SQLite needs to alter a table. An app's own tables (``ringfence.Model``) are not migrated
here: ringfence creates missing ones at start-up, and the app evolves them itself (e.g. with its
own Alembic history in the default ``alembic_version`` table).

The first revision (``0001``) is the baseline. It adopts databases made before migrations existed
by creating only the tables and indexes missing (:mod:`.adopt`). It can be regenerated from the
models with ``python -m ringfence.store.migrations --baseline`` after deleting ``versions/0001_*.py``
(only while no deployment has applied a later revision).
"""
