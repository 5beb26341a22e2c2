"""What every ``ringfence`` sub-command shares: the one-line failure, loading the app, the storage options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from ringfence.app import App

DataDirOption = Annotated[Path | None, typer.Option(help="Data folder (database, keys). [env RINGFENCE_DATA_DIR]")]
DatabaseOption = Annotated[str | None, typer.Option(help="SQLAlchemy URL. [env RINGFENCE_DATABASE_URL]")]


def fail(message: str) -> NoReturn:
    """Stop with ``ringfence: error: <message>`` on standard error and exit status 2, never a traceback."""
    typer.echo(f"ringfence: error: {message}", err=True)
    raise typer.Exit(2)


def load_app_or_fail(target: str) -> App:
    """The app at ``target``; any reason it cannot be loaded is one line and exit status 2."""
    from ringfence.declaration import DeclarationError
    from ringfence.loader import LoadError, load_app

    try:
        return load_app(target)
    except (DeclarationError, LoadError) as exc:
        fail(str(exc))
    except Exception as exc:  # an error in the app's own module: one line, not a traceback
        fail(f"cannot load {target}: {type(exc).__name__}: {exc}")
