"""Each tool as a reviewer sees it: the author's declaration next to what the SDK lists on the wire."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.types import Tool

from ringfence.app import App
from ringfence.declaration import ToolSpec
from ringfence.runtime import mcp_server_for

T = TypeVar("T")

@dataclass(frozen=True)
class ReviewedTool:
    """One declared tool: its spec, and the ``tools/list`` entry derived from it (schemas included)."""

    spec: ToolSpec
    listed: Tool

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def source(self) -> tuple[str | None, int | None]:
        """The file and first line of the tool's function, when Python can tell."""
        fn = inspect.unwrap(self.spec.fn)
        try:
            file = inspect.getsourcefile(fn)
        except TypeError:
            return None, None
        try:
            line: int | None = inspect.getsourcelines(fn)[1]
        except (OSError, TypeError):
            line = None
        return file, line


def reviewed_tools(app: App) -> list[ReviewedTool]:
    """The app's tools in declaration order, with the schemas ``tools/list`` would publish."""
    listed = {tool.name: tool for tool in _run(mcp_server_for(app).list_tools())}
    return [ReviewedTool(spec, listed[name]) for name, spec in app.tools.items()]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also from code that is already inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
