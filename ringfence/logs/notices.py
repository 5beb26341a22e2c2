"""Lines for the person who started the server, written to standard error outside the log.

Such a line (the first user's password) must never enter the log, which a file or a collector
keeps. On a terminal it is framed by blank lines and rules, in bold, so it stands out from the log
lines around it; elsewhere it is one plain line, so that a collector reading the output sees no
decoration.
"""

from __future__ import annotations

import sys
from typing import TextIO

BOLD, PLAIN = "\033[1m", "\033[0m"


def show_notice(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` once to ``stream`` (standard error), framed on a terminal."""
    stream = stream or sys.stderr
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if terminal:
        rule = "=" * min(len(text), 100)
        stream.write(f"\n{BOLD}{rule}\n{text}\n{rule}{PLAIN}\n\n")
    else:
        stream.write(text + "\n")
    stream.flush()
