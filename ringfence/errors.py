"""What a tool raises to refuse: a light module, so an app's tools need nothing of the runtime."""


class ToolError(Exception):
    """Raise from a tool to refuse with a message the user may see (nothing else is shown)."""
