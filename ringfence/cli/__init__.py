"""The ``ringfence`` command: the top layer, above everything it runs.

``main`` holds the root command (``serve``, ``auth-server``) and registers the others, one module
each. Every command imports the runtime it uses inside its body, so ``ringfence --help`` and
``ringfence redact`` start without the MCP SDK or SQLAlchemy (bench/cli_start.py).
"""
