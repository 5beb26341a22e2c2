"""ringfence: secure-by-default MCP servers and ChatGPT apps.

Declare each tool once (its effect, scopes and the data it returns); ringfence derives the MCP
annotations, Apps SDK security schemes and protected-resource metadata from it and enforces
the OAuth checks before and after every call.

The public API is what this module exports, plus :mod:`ringfence.detect` (the redactor and the
injection detector); every other module is internal and may change. Names load on first use
(PEP 562), so ``import ringfence`` and the ``ringfence`` command start without the MCP SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ringfence import network
    from ringfence.app import App
    from ringfence.declaration import DeclarationError, Limits, Scope
    from ringfence.errors import ToolError
    from ringfence.ops.ratelimit import Rate
    from ringfence.ops.ratelimit_keys import RateLimits
    from ringfence.principal import Principal, ProviderToken, current_principal, optional_principal
    from ringfence.store.database import Model
    from ringfence.store.owned import Owned, OwnershipError
    from ringfence.widgets import Widget, to_widget

# Public modules, imported when first named.
_MODULES = {"network": "ringfence.network"}

# Each public name and the module that defines it.
_EXPORTS = {
    "App": "ringfence.app",
    "DeclarationError": "ringfence.declaration",
    "Limits": "ringfence.declaration",
    "Model": "ringfence.store.database",
    "Owned": "ringfence.store.owned",
    "OwnershipError": "ringfence.store.owned",
    "Principal": "ringfence.principal",
    "ProviderToken": "ringfence.principal",
    "Rate": "ringfence.ops.ratelimit",
    "RateLimits": "ringfence.ops.ratelimit_keys",
    "Scope": "ringfence.declaration",
    "ToolError": "ringfence.errors",
    "Widget": "ringfence.widgets",
    "current_principal": "ringfence.principal",
    "optional_principal": "ringfence.principal",
    "to_widget": "ringfence.widgets",
}

__all__ = [
    "App",
    "DeclarationError",
    "Limits",
    "Model",
    "Owned",
    "OwnershipError",
    "Principal",
    "ProviderToken",
    "Rate",
    "RateLimits",
    "Scope",
    "ToolError",
    "Widget",
    "current_principal",
    "network",
    "optional_principal",
    "to_widget",
]


def __getattr__(name: str) -> object:
    if name in _MODULES:
        value = import_module(_MODULES[name])
    elif name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'ringfence' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
