"""What an app author declares: scopes and, for each tool, its security posture.

Everything else ringfence emits or enforces (annotations, ``securitySchemes``, protected-resource
metadata, the per-call scope check) is derived from these two types in :mod:`ringfence.policy`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Required, TypedDict, Unpack, get_args

Effect = Literal["read", "write", "destructive"]
EFFECTS: tuple[str, ...] = get_args(Effect)

# How a destructive call may be confirmed: "any" way the client supports (MCP elicitation, the
# widget's button, the confirmation page), or only the signed-in confirmation page ("page"), which
# no client can answer for the user. ringfence.policy.confirmation_channels derives the channels.
ConfirmBy = Literal["any", "page"]
CONFIRM_BY: tuple[str, ...] = get_args(ConfirmBy)

# The kinds of data a tool may return; the output scan and the privacy disclosure read them.
DataClass = Literal[
    "public",
    "personal",
    "contact",
    "location",
    "financial",
    "health",
    "credentials",
    "user_content",
]
DATA_CLASSES: tuple[str, ...] = get_args(DataClass)

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# A login provider's name (``--login-provider name=``): in its callback path and its accounts' usernames.
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")

MAX_TOOL_TIMEOUT = 3600.0  # seconds a tool call may be allowed to run, at most

# RFC 6749 / MCP 2026-07-28: offline_access is a request for refresh tokens, never a resource scope.
RESERVED_SCOPES = frozenset({"offline_access", "openid"})


@dataclass(frozen=True)
class Limits:
    """Bounds every tool's arguments (and result) must stay within; override per tool with ``@app.tool(limits=...)``."""

    max_string_length: int = 10_000
    max_array_items: int = 1_000
    max_depth: int = 16
    max_argument_bytes: int = 64 * 1024
    hidden_characters: Literal["refuse", "strip"] = "refuse"
    max_result_bytes: int = 256 * 1024  # serialized JSON of one result (guards/output.py)


class DeclarationError(ValueError):
    """A declaration that cannot be made safe; raised when the app is declared or served."""


@dataclass(frozen=True)
class Scope:
    """An OAuth scope the app defines, with the sentence the consent page shows for it.

    ``implies`` lists narrower scopes this one grants too (``contacts:write`` implies
    ``contacts:read``).
    """

    name: str
    description: str
    implies: tuple[str, ...] = ()

    def __init__(self, name: str, description: str, implies: Iterable[str] = ()) -> None:
        if not isinstance(name, str) or not _SCOPE_TOKEN.match(name):
            raise DeclarationError(f"scope name {name!r} is not a valid OAuth scope token (RFC 6749 §3.3)")
        if name in RESERVED_SCOPES:
            raise DeclarationError(f"scope {name!r} is reserved by OAuth/OpenID and cannot be declared")
        if not description or not description.strip():
            raise DeclarationError(f"scope {name!r} needs a description: the consent page shows it to the user")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "description", description.strip())
        object.__setattr__(self, "implies", tuple(implies))


@dataclass(frozen=True)
class ToolSpec:
    """One tool's security posture, declared next to its code and never repeated elsewhere."""

    name: str
    fn: Callable[..., Any]
    effect: Effect
    scopes: frozenset[str]
    returns: frozenset[str]
    open_world: bool
    idempotent: bool
    title: str | None = None
    description: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    preview: Callable[..., Any] | None = None  # destructive tools: what a call would do, in a sentence
    log_arguments: tuple[str, ...] = ()  # parameters whose (redacted) values records may include
    confirm: ConfirmBy | None = None  # destructive tools: how the user may confirm a call (None: not confirmed)
    widget: str | None = None  # the widget the host shows its result in (ringfence/widgets.py)
    irreversible: bool | None = None  # its effect cannot be undone (True for every destructive tool): confirmed;
    # None: a write that did not say (lint asks an open-world write to)
    reaches: frozenset[str] = frozenset()  # the hosts its sanctioned HTTP client may call (ringfence/network.py)
    timeout: float | None = None  # seconds the call may run; None: the app's default
    unsafe_send_undeclared_personal_data: bool = False  # send personal data its returns= does not declare
    # login provider name -> the scopes there the tool needs to act as the signed-in person (its token there)
    provider_scopes: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_public(self) -> bool:
        return not self.scopes


class ToolDeclaration(TypedDict, total=False):
    """What an author may say of a tool (``@app.tool(...)``); checked into a :class:`ToolSpec`.

    ``effect`` is required; ``scopes`` are all required to call it (none: a public tool); ``returns``
    names the data classes in its results; ``open_world`` says it reaches beyond the user's account;
    ``idempotent`` defaults to true for reads only; ``name``, ``title`` and ``description`` default to
    the function's; ``meta`` adds ``_meta`` keys (never annotations or security schemes, which are
    derived); ``limits`` replaces the app's argument limits for this tool; ``preview`` (destructive
    tools) takes the call's arguments and says, in a sentence, what the call would do;
    ``log_arguments`` names parameters whose values (redacted) its log and audit records include;
    ``confirm="page"`` (destructive tools) accepts only the signed-in confirmation page as the user's
    confirmation, never the client's elicitation answer or widget button (default ``"any"``);
    ``widget`` names the widget (``app.widget(...)``) the host shows the result in (a destructive
    tool shows ringfence's confirmation card instead); ``irreversible=True`` says a write cannot be undone
    (a sent e-mail, a payment), so it is confirmed like a destructive tool; ``reaches`` lists the hosts
    the tool's HTTP client may call; ``timeout`` bounds the call in seconds (default: the app's);
    ``unsafe_send_undeclared_personal_data=True`` sends personal data its ``returns`` does not declare
    instead of withholding it (logged at start-up); ``provider_scopes`` maps a login provider's name
    (``--login-provider name=``) to the scopes the tool needs there to act as the signed-in person: the
    person's token there is then kept, encrypted, and the tool reads it with
    ``await current_principal().provider_token(name)``; such a tool is ``open_world``.
    """

    effect: Required[Effect]
    scopes: Iterable[str]
    returns: Iterable[str]
    open_world: bool
    idempotent: bool | None
    name: str | None
    title: str | None
    description: str | None
    meta: dict[str, Any] | None
    limits: Limits | None
    preview: Callable[..., Any] | None
    log_arguments: Iterable[str]
    confirm: ConfirmBy | None
    widget: str | None
    irreversible: bool | None
    reaches: Iterable[str]
    timeout: float | None
    unsafe_send_undeclared_personal_data: bool
    provider_scopes: Mapping[str, Iterable[str]]


def declare_tool(fn: Callable[..., Any], **declaration: Unpack[ToolDeclaration]) -> ToolSpec:
    """Check one tool declaration and return its frozen spec."""
    tool_name = declaration.get("name") or fn.__name__
    unknown = sorted(set(declaration) - set(ToolDeclaration.__annotations__))
    if unknown:
        raise DeclarationError(f"tool {tool_name!r}: unknown declaration {', '.join(unknown)}; a tool declares "
                               f"{', '.join(ToolDeclaration.__annotations__)}")
    effect = declaration.get("effect")
    scopes, returns = declaration.get("scopes", ()), declaration.get("returns", ())
    meta, preview = declaration.get("meta"), declaration.get("preview")
    idempotent = declaration.get("idempotent")
    if not _TOOL_NAME.match(tool_name):
        raise DeclarationError(f"tool name {tool_name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    if effect not in EFFECTS:
        raise DeclarationError(
            f"tool {tool_name!r} must declare effect= one of {', '.join(EFFECTS)} (got {effect!r})"
        )
    if isinstance(scopes, str) or isinstance(returns, str):
        raise DeclarationError(f"tool {tool_name!r}: scopes= and returns= take lists, not a string")
    required_scopes = frozenset(scopes)
    unknown_classes = sorted(set(returns) - set(DATA_CLASSES))
    if unknown_classes:
        raise DeclarationError(
            f"tool {tool_name!r} returns unknown data classes {unknown_classes}; known: {', '.join(DATA_CLASSES)}"
        )
    if meta and any(key in meta for key in ("securitySchemes", "annotations")):
        raise DeclarationError(
            f"tool {tool_name!r}: securitySchemes and annotations are derived from the declaration; "
            "do not set them in meta"
        )
    irreversible = _irreversible(tool_name, effect, declaration.get("irreversible"))
    if preview is not None and not irreversible:
        raise DeclarationError(f"tool {tool_name!r}: preview= is for destructive or irreversible tools, "
                               "which are confirmed")
    widget = declaration.get("widget")
    if widget is not None and not isinstance(widget, str):
        raise DeclarationError(f"tool {tool_name!r}: widget= takes the widget's name")
    if widget is not None and irreversible:
        raise DeclarationError(f"tool {tool_name!r}: a confirmed tool shows ringfence's confirmation card, "
                               "not a widget of its own")
    if meta and any(key in meta for key in ("ui", "openai/outputTemplate", "openai/widgetAccessible")):
        raise DeclarationError(f"tool {tool_name!r}: widget metadata is derived from widget= and app.widget(...); "
                               "do not set it in meta")
    confirm_by = _confirm_by(tool_name, irreversible, declaration.get("confirm"), required_scopes)
    provider_scopes = _provider_scopes(tool_name, declaration.get("provider_scopes", {}), required_scopes)
    open_world = declaration.get("open_world", bool(provider_scopes))  # acting at a provider reaches beyond
    if provider_scopes and open_world is not True:
        raise DeclarationError(f"tool {tool_name!r}: a tool that acts at a login provider (provider_scopes=) reaches "
                               "beyond the user's account here: it is open_world (leave open_world= out)")
    logged = _logged_arguments(fn, tool_name, declaration.get("log_arguments", ()))
    if idempotent is None:
        idempotent = effect == "read"  # a read has no effect to repeat
    return ToolSpec(
        name=tool_name,
        fn=fn,
        effect=effect,  # type: ignore[arg-type]
        scopes=required_scopes,
        returns=frozenset(returns),
        open_world=open_world,
        idempotent=idempotent,
        title=declaration.get("title"),
        description=declaration.get("description"),
        meta=dict(meta or {}),
        limits=declaration.get("limits") or Limits(),
        preview=preview,
        log_arguments=logged,
        confirm=confirm_by,  # type: ignore[arg-type]
        widget=widget,
        irreversible=irreversible,
        reaches=_reaches(tool_name, declaration.get("reaches", ())),
        timeout=_timeout(tool_name, declaration.get("timeout")),
        unsafe_send_undeclared_personal_data=_flag(tool_name, "unsafe_send_undeclared_personal_data", declaration),
        provider_scopes=provider_scopes,
    )


def _irreversible(tool_name: str, effect: object, irreversible: object) -> bool | None:
    """Whether the tool's effect cannot be undone: always for a destructive tool, as declared for a write
    (``None`` if it did not say), never for a read."""
    if irreversible is not None and not isinstance(irreversible, bool):
        raise DeclarationError(f"tool {tool_name!r}: irreversible= takes True or False")
    if irreversible is not None and effect == "read":
        raise DeclarationError(f"tool {tool_name!r}: a read has no effect to undo; irreversible= is for writes")
    if effect == "destructive":
        if irreversible is False:
            raise DeclarationError(f"tool {tool_name!r}: a destructive tool cannot be undone; for a change that "
                                   "can, declare effect=\"write\"")
        return True
    return irreversible


def _confirm_by(tool_name: str, irreversible: bool | None, confirm: str | None, scopes: frozenset[str]) -> str | None:
    """How a call to the tool is confirmed: ``"any"`` way by default for an irreversible tool, else none."""
    if confirm is None:
        return "any" if irreversible else None
    if not irreversible:
        raise DeclarationError(f"tool {tool_name!r}: confirm= is for destructive or irreversible tools, "
                               "which are confirmed")
    if confirm not in CONFIRM_BY:
        raise DeclarationError(f"tool {tool_name!r}: confirm= must be one of {', '.join(CONFIRM_BY)} (got {confirm!r})")
    if confirm == "page" and not scopes:
        raise DeclarationError(f"tool {tool_name!r}: confirm=\"page\" needs scopes=: only a signed-in user has a "
                               "confirmation page")
    return confirm


# A host name as it may appear in a URL (RFC 3986 §3.2.2 reg-name, lower-cased), with an optional port.
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=[^:]{{1,253}}(:|$)){_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?$")


def _reaches(tool_name: str, hosts: Iterable[str]) -> frozenset[str]:
    """The hosts a tool's HTTP client may call: exact names (``api.example.com``, ``api.example.com:8443``)."""
    if isinstance(hosts, str):
        raise DeclarationError(f"tool {tool_name!r}: reaches= takes a list of host names, not a string")
    hosts = tuple(hosts)
    bad = [host for host in hosts if not isinstance(host, str) or not _HOST.match(host)
           or (":" in host and not 0 < int(host.rsplit(":", 1)[1]) <= 65535)]  # RFC 6335 §6: ports 1-65535
    if bad:
        raise DeclarationError(f"tool {tool_name!r}: reaches= takes host names such as 'api.example.com' "
                               f"(no scheme, path or wildcard); got {bad}")
    return frozenset(hosts)


def _provider_scopes(tool_name: str, declared: object, scopes: frozenset[str]) -> dict[str, frozenset[str]]:
    """Login provider name -> the scopes there the tool acts with, each a valid scope token."""
    if not isinstance(declared, Mapping):
        raise DeclarationError(f"tool {tool_name!r}: provider_scopes= maps a login provider's name to the scopes "
                               "the tool needs there, e.g. {\"github\": [\"repo\"]}")
    if declared and not scopes:
        raise DeclarationError(f"tool {tool_name!r}: provider_scopes= acts as the signed-in person, so the tool "
                               "needs scopes= (a public tool has no person to act for)")
    checked: dict[str, frozenset[str]] = {}
    for provider, wanted in declared.items():
        if not isinstance(provider, str) or not PROVIDER_NAME.match(provider):
            raise DeclarationError(f"tool {tool_name!r}: provider_scopes= names login providers as their name= "
                                   f"(1-32 lower-case letters, digits or '-'); got {provider!r}")
        names = (wanted,) if isinstance(wanted, str) else tuple(wanted)
        if isinstance(wanted, str) or not names or not all(
                isinstance(name, str) and _SCOPE_TOKEN.match(name) for name in names):
            raise DeclarationError(f"tool {tool_name!r}: provider_scopes[{provider!r}] takes a list of the "
                                   "provider's scope names (RFC 6749 §3.3 scope tokens)")
        checked[provider] = frozenset(names)
    return checked


def checked_timeout(what: str, timeout: object) -> float:
    """Seconds a call may run (a tool's ``timeout=``, an app's ``tool_timeout=``): more than 0, at most an hour."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= MAX_TOOL_TIMEOUT:
        raise DeclarationError(f"{what} takes seconds, more than 0 and at most {MAX_TOOL_TIMEOUT:g}")
    return float(timeout)


def _timeout(tool_name: str, timeout: object) -> float | None:
    """Seconds a call may run, or ``None`` for the app's default."""
    return None if timeout is None else checked_timeout(f"tool {tool_name!r}: timeout=", timeout)


def _flag(tool_name: str, name: str, declaration: ToolDeclaration) -> bool:
    value = declaration.get(name, False)  # type: ignore[misc]
    if not isinstance(value, bool):
        raise DeclarationError(f"tool {tool_name!r}: {name}= takes True or False")
    return value


def _logged_arguments(fn: Callable[..., Any], tool_name: str, names: Iterable[str]) -> tuple[str, ...]:
    """The parameters a tool opts into its records (their values are still redacted); each must exist."""
    if isinstance(names, str):
        raise DeclarationError(f"tool {tool_name!r}: log_arguments= takes a list of parameter names, not a string")
    logged = tuple(dict.fromkeys(names))
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        parameters = {}
    unknown = [name for name in logged if name not in parameters or
               parameters[name].kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if unknown:
        raise DeclarationError(f"tool {tool_name!r}: log_arguments= names {unknown}, which are not its parameters")
    return logged
