"""ringfence: secure-by-default MCP servers and ChatGPT apps.

Declare each tool once (its effect, scopes and the data it returns); ringfence derives the MCP
annotations, Apps SDK security schemes and protected-resource metadata from it and enforces
the OAuth checks before and after every call.
"""

from ringfence.app import App
from ringfence.declaration import DeclarationError, Scope
from ringfence.guards.validation import Limits
from ringfence.guards.wrapper import ToolError
from ringfence.principal import Principal, current_principal, optional_principal
from ringfence.store.database import Model

__all__ = [
    "App",
    "DeclarationError",
    "Limits",
    "Model",
    "Principal",
    "Scope",
    "ToolError",
    "current_principal",
    "optional_principal",
]
