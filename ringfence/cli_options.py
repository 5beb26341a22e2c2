"""What every ``ringfence`` sub-command shares: the one-line failure and the storage options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

DataDirOption = Annotated[Path | None, typer.Option(help="Data folder (database, keys). [env RINGFENCE_DATA_DIR]")]
DatabaseOption = Annotated[str | None, typer.Option(help="SQLAlchemy URL. [env RINGFENCE_DATABASE_URL]")]


def fail(message: str) -> NoReturn:
    """Stop with ``ringfence: error: <message>`` on standard error and exit status 2, never a traceback."""
    typer.echo(f"ringfence: error: {message}", err=True)
    raise typer.Exit(2)
