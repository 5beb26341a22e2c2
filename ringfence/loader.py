"""Loads the App an operator names: ``path/to/app.py[:attr]`` or ``package.module[:attr]``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ringfence.app import App


class LoadError(Exception):
    """The target could not be loaded; the message says why in one line."""


def load_app(target: str) -> App:
    location, _, attr = target.partition(":")
    attr = attr or "app"
    if location.endswith(".py") or "/" in location or Path(location).is_file():
        module = _load_file(Path(location))
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as exc:
            raise LoadError(f"cannot import {location!r}: {exc}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise LoadError(f"{location!r} has no ringfence App named {attr!r}")
    return app


def _load_file(path: Path) -> object:
    if not path.is_file():
        raise LoadError(f"no such file: {path}")
    path = path.resolve()
    sys.path.insert(0, str(path.parent))  # so the app can import its sibling modules
    name = f"ringfence_target_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
