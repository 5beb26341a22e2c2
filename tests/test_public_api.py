"""The public face (issue #11): what an author imports is `ringfence` and `ringfence.detect`, exported
lazily (PEP 562), so that importing it, `ringfence --help` and `ringfence redact` start without the
MCP SDK, SQLAlchemy or pydantic; the README and the reference app import nothing internal."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib.metadata import version

import pytest

import ringfence
from tests.support.serve import REPO

PUBLIC_MODULES = {"ringfence", "ringfence.detect"}
HEAVY = ("mcp", "sqlalchemy", "pydantic", "starlette", "uvicorn", "authlib", "jsonschema")


def modules_loaded_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter has imported after running ``code``."""
    script = (f"import sys, json\n{code}\n"
              "print('\\nMODULES', json.dumps(sorted({name.split('.')[0] for name in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.rpartition("\nMODULES ")[2]))


@pytest.mark.parametrize("name", ringfence.__all__)
def test_every_exported_name_resolves_to_its_defining_module(name: str) -> None:
    value = getattr(ringfence, name)
    assert value.__name__ in (name, f"ringfence.{name}")  # a class or function, or a public module
    assert name in dir(ringfence)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        ringfence.Nope  # noqa: B018


def test_the_package_version_is_the_installed_one() -> None:
    assert ringfence.__version__ == version("ringfence")


@pytest.mark.parametrize("code", [
    "import ringfence",
    "import ringfence.cli.main",
    "from ringfence import ToolError, Limits, Scope, DeclarationError, Rate, RateLimits, Principal",
    "from ringfence.detect import Redactor, InjectionDetector, redact_value",
])
def test_light_imports_load_no_runtime_dependency(code: str) -> None:
    assert not modules_loaded_by(code) & set(HEAVY)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["audit", "--help"], ["redact"]])
def test_the_command_loads_only_what_the_sub_command_uses(argv: list[str]) -> None:
    code = ("import io, sys\nsys.stdin = io.StringIO('call alice@example.com')\n"
            "from ringfence.cli.main import cli\n"
            f"try:\n    cli({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass")
    assert not modules_loaded_by(code) & set(HEAVY) - {"pydantic"}  # Typer coerces option values with pydantic


def test_version_option_prints_the_version() -> None:
    done = subprocess.run([sys.executable, "-m", "ringfence", "--version"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert (done.returncode, done.stdout) == (0, f"ringfence {version('ringfence')}\n")


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return {module for module in modules if module.split(".")[0] == "ringfence"}


def test_the_reference_app_imports_only_the_public_api() -> None:
    source = (REPO / "examples" / "contacts" / "app.py").read_text()
    assert imported_modules(source) <= PUBLIC_MODULES


def test_the_readme_shows_only_public_imports() -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    shown = {line.split()[1] for block in blocks for line in block.splitlines()
             if line.startswith(("from ringfence", "import ringfence"))}
    assert shown and shown <= PUBLIC_MODULES, shown - PUBLIC_MODULES
