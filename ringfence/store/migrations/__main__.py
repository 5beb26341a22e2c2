"""``python -m ringfence.store.migrations MESSAGE``: write a new revision from the models (autogenerate).

The models are compared with a throwaway SQLite database migrated to the current head.
``--baseline`` writes revision 0001 from an empty database instead, with the adopting operations.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from ringfence.store.schema import MIGRATIONS, alembic_config

BASELINE_ID = "0001"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ringfence.store.migrations", description=__doc__)
    parser.add_argument("message", nargs="?", default="baseline")
    parser.add_argument("--baseline", action="store_true", help="write revision 0001 (versions/ must be empty)")
    args = parser.parse_args()
    existing = sorted((MIGRATIONS / "versions").glob("[0-9]*.py"))
    if args.baseline and existing:
        parser.error(f"delete {existing[0]} first: the baseline is the first revision")
    revision_id = BASELINE_ID if args.baseline else f"{len(existing) + 1:04d}"
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'head.db'}")
        with engine.begin() as connection:
            config = alembic_config(connection)
            config.attributes["render_as_batch"] = not args.baseline
            if not args.baseline:
                command.upgrade(config, "head")
            script = command.revision(config, message=args.message, autogenerate=True, rev_id=revision_id)
        engine.dispose()
    path = Path(script.path)  # type: ignore[union-attr]
    if args.baseline:
        text = path.read_text()
        text = re.sub(r"\bop\.create_(table|index)\(", r"adopt.create_\1(", text)
        text = text.replace("from alembic import op\n", "from alembic import op\n\nfrom ringfence.store.migrations "
                                                          "import adopt\n", 1)
        path.write_text(text)
    print(f"wrote {path}: read it before committing")


if __name__ == "__main__":
    main()
