"""One typed settings object, loaded once and validated at start-up.

Every option has a ``RINGFENCE_*`` environment variable and a ``ringfence serve`` flag. A
setting that would make the server unsafe or ambiguous stops start-up with one sentence that
says how to fix it (:class:`ConfigError`).
"""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "RINGFENCE_"
# Variables other commands read, which a shell that also runs `serve` may hold (`ringfence preview`).
OTHER_COMMANDS_SETTINGS = frozenset({"RINGFENCE_PREVIEW_TOKEN"})
MCP_PATH = "/mcp"
MAX_FORM_BYTES = 64 * 1024  # bodies of every route but /mcp: sign-in and consent forms, OAuth requests
PRM_PATH = "/.well-known/oauth-protected-resource"
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)

RefusalStyle = Literal["auto", "http", "tool-result"]
LogFormat = Literal["json", "text"]
ForwardingHeader = Literal["x-forwarded-for", "forwarded"]

# Apps SDK auth guide: ChatGPT's redirect URIs; {callback_id} stands for one path segment.
CHATGPT_REDIRECT_URIS = (
    "https://chatgpt.com/connector_platform_oauth_redirect",
    "https://chatgpt.com/connector/oauth/{callback_id}",
    "https://platform.openai.com/apps-manage/oauth",
)


class ConfigError(ValueError):
    """A configuration that ringfence refuses to start with; the message says how to fix it."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Everything ``ringfence serve`` can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = None
    data_dir: Path = Path("ringfence-data")
    database_url: str | None = None

    # External identity provider (resource-server mode).
    issuer: str | None = None
    jwks_url: str | None = None
    introspection_url: str | None = None
    introspection_client_id: str | None = None
    introspection_client_secret: str | None = None
    audience: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    clock_leeway_seconds: int = Field(30, ge=0, le=300)
    jwks_cache_seconds: int = Field(300, ge=10, le=86400)
    jwks_refresh_interval_seconds: int = Field(30, ge=1, le=3600)
    http_timeout_seconds: float = Field(5.0, gt=0, le=60)

    # HTTP limits and browser checks.
    max_body_bytes: int = Field(1_048_576, ge=1024, le=16 * 1_048_576)
    max_token_bytes: int = Field(8192, ge=512, le=65536)
    max_header_bytes: int = Field(16384, ge=4096, le=65536)  # request line and headers together: 431
    max_url_bytes: int = Field(8192, ge=1024, le=65536)  # path and query string: 414
    header_timeout_seconds: float = Field(10.0, gt=0, le=120)  # the request head must arrive within: 408
    body_timeout_seconds: float = Field(30.0, gt=0, le=600)  # the whole body must arrive within: 408
    keep_alive_seconds: int = Field(5, ge=1, le=300)  # an idle kept-alive connection is closed after
    shutdown_timeout_seconds: int = Field(10, ge=1, le=600)  # open requests get this long on shutdown
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    # Reverse proxies whose forwarding header names the client (ringfence/ops/proxies.py; README
    # "HTTP hardening"). None by default: forwarding headers are then ignored.
    trusted_proxies: tuple[str, ...] = ()
    trusted_proxy_header: ForwardingHeader = "x-forwarded-for"

    # 2025-era MCP sessions held open at once (ringfence/resource/sessions.py; README "Rate limits"):
    # in all, anonymous ones in all and per address (IPv6 per /64), and per signed-in principal.
    max_sessions: int = Field(10_000, ge=1, le=1_000_000)
    max_anonymous_sessions: int = Field(2_500, ge=0, le=1_000_000)
    max_anonymous_sessions_per_address: int = Field(100, ge=0, le=1_000_000)
    max_sessions_per_principal: int = Field(1_000, ge=1, le=1_000_000)

    # Embedded authorization server (when no --issuer is given).
    allowed_redirect_uris: tuple[str, ...] = CHATGPT_REDIRECT_URIS
    allow_loopback_redirect_uris: bool = True
    allow_loopback_client_metadata: bool = False  # unsafe outside development: fetches from loopback
    # Where people sign in (authserver/login_providers.py; README "Sign in with your identity provider"):
    # login providers, each one ``key=value,…`` string, and whether local passwords are offered too.
    login_providers: tuple[str, ...] = ()
    local_passwords: bool = True

    # Shared state for several instances (rate-limit budgets); in-process when unset.
    redis_url: str | None = None

    # Retention (ringfence/privacy/retention.py; README "Retention"): how long each kind of stored
    # data is kept past the end of its use, and how often the in-process purge runs.
    retention_authorization_code_hours: int = Field(24, ge=1, le=24 * 30)  # after expiry: replay still revokes
    retention_refresh_token_days: int = Field(7, ge=1, le=365)  # after the whole family expired or was revoked
    retention_confirmation_hours: int = Field(1, ge=1, le=24 * 30)  # after expiry (holds the preview text)
    retention_idle_client_days: int = Field(30, ge=0, le=3650)  # registered client with no grant; 0: keep
    retention_audit_payload_days: int = Field(365, ge=1, le=3650)  # the chain itself is kept
    purge_interval_minutes: int = Field(60, ge=1, le=24 * 60)

    # Audit log (ringfence/audit/schedule.py; README "Audit log"): the newest record is signed after
    # this many new records or this many seconds, whichever comes first: the most a database
    # writer could cut from the end of the log unnoticed.
    audit_checkpoint_records: int = Field(1000, ge=1, le=1_000_000)
    audit_checkpoint_seconds: int = Field(60, ge=1, le=86_400)

    # How a tool call refused for a missing token or scope is answered (see README).
    refusal_style: RefusalStyle = "auto"

    # Logs (ringfence/logs; README "Logs"): JSON lines on standard error (text when it is a terminal,
    # unless log_format says), optionally also a file rotated daily, of which log_retention_days old
    # files are kept.
    log_format: LogFormat | None = None
    log_file: Path | None = None
    log_retention_days: int = Field(30, ge=1, le=3650)

    # Operations: /metrics and suspicious-activity alerts (ringfence/monitor; README "Operations").
    metrics: bool = True  # /metrics: loopback only, or everyone presenting metrics_token
    metrics_token: str | None = Field(None, min_length=16, max_length=256)
    # Each detector: alert at COUNT events within WINDOW_SECONDS (0 turns the detector off).
    alert_auth_failures: int = Field(20, ge=0, le=100_000)
    alert_auth_failures_window_seconds: int = Field(60, ge=1, le=86_400)
    alert_scope_refusals: int = Field(10, ge=0, le=100_000)
    alert_scope_refusals_window_seconds: int = Field(300, ge=1, le=86_400)
    alert_declined_confirmations: int = Field(5, ge=0, le=100_000)
    alert_declined_confirmations_window_seconds: int = Field(600, ge=1, le=86_400)
    alert_injection_hits: int = Field(1, ge=0, le=100_000)
    alert_injection_hits_window_seconds: int = Field(3600, ge=1, le=86_400)
    alert_bulk_reads: int = Field(50, ge=0, le=100_000)  # then an open-world call
    alert_bulk_reads_window_seconds: int = Field(600, ge=1, le=86_400)
    alert_tool_calls: int = Field(300, ge=0, le=1_000_000)
    alert_tool_calls_window_seconds: int = Field(60, ge=1, le=86_400)
    alert_tool_failures: int = Field(10, ge=0, le=100_000)  # one tool, all callers: error or failed
    alert_tool_failures_window_seconds: int = Field(300, ge=1, le=86_400)
    alert_server_errors: int = Field(20, ge=0, le=100_000)  # 5xx answers, whole server
    alert_server_errors_window_seconds: int = Field(60, ge=1, le=86_400)
    alert_rate_limited: int = Field(30, ge=0, le=100_000)  # 429s to one caller or one client
    alert_rate_limited_window_seconds: int = Field(60, ge=1, le=86_400)
    alert_rate_limited_total: int = Field(300, ge=0, le=1_000_000)  # 429s to everyone together
    alert_rate_limited_total_window_seconds: int = Field(60, ge=1, le=86_400)
    alert_cooldown_seconds: int = Field(900, ge=1, le=86_400)
    alert_max_tracked_keys: int = Field(10_000, ge=100, le=1_000_000)
    alert_webhook_url: str | None = None
    alert_webhook_secret: str | None = Field(None, min_length=16, max_length=256)
    alert_webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    alert_webhook_retries: int = Field(3, ge=0, le=10)

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings from the environment, with explicit values (CLI flags) taking precedence."""
        unknown = sorted(
            name for name in os.environ if name.startswith(ENV_PREFIX) and name not in OTHER_COMMANDS_SETTINGS
            and name[len(ENV_PREFIX):].lower() not in cls.model_fields
        )
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]}; see `ringfence serve --help` for the options")
        try:
            settings = cls(**{k: v for k, v in overrides.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "settings"
            raise ConfigError(f"invalid {field}: {first['msg']}") from None
        settings.check()
        return settings

    # Derived values -------------------------------------------------------------------------

    @cached_property
    def base_url(self) -> str:
        """The public origin clients use, without a trailing slash."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @cached_property
    def resource_url(self) -> str:
        """The MCP endpoint's canonical URI: the RFC 8707 resource and the PRM ``resource``."""
        return self.base_url + MCP_PATH

    @cached_property
    def resource_metadata_url(self) -> str:
        """RFC 9728 §3.1: the well-known path inserted before the resource's path."""
        return self.base_url + PRM_PATH + MCP_PATH

    @cached_property
    def expected_audience(self) -> str:
        return self.audience or self.resource_url

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ringfence.db').resolve()}"

    @cached_property
    def effective_issuer(self) -> str:
        """The trusted issuer: the external provider's, or this server's own origin (embedded mode)."""
        return self.issuer if self.issuer is not None else self.base_url

    @property
    def embedded_auth_server(self) -> bool:
        return self.issuer is None

    def unsafe_options(self) -> list[str]:
        """Options that give up a protection; each is announced at start-up."""
        unsafe = []
        if self.allow_loopback_client_metadata:
            unsafe.append("allow_loopback_client_metadata: client metadata documents are fetched from loopback")
        return unsafe

    # Validation -----------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse an unsafe or ambiguous configuration with an actionable sentence."""
        if self.public_url is not None and self.public_url.endswith("/"):
            raise ConfigError(
                f"public URL {self.public_url!r} ends with '/'; give it without the trailing slash, "
                "clients compare it byte for byte"
            )
        _check_origin("public URL", self.base_url, allow_path=False)
        for origin in self.allowed_origins:
            # These origins may read /token and /register answers (CORS): each must be an exact origin.
            if origin.strip().lower() in ("null", "*") or origin.endswith("/"):
                raise ConfigError(f"allowed origin {origin!r} is not an origin; give scheme://host[:port], "
                                  "such as http://localhost:6274")
            _check_origin("allowed origin", origin, allow_path=False)
        for network in self.trusted_proxies:
            _check_trusted_proxy(network)
        if not self.max_anonymous_sessions_per_address <= self.max_anonymous_sessions <= self.max_sessions \
                or self.max_sessions_per_principal > self.max_sessions:
            raise ConfigError("session limits must fit in each other: per address <= anonymous <= max_sessions, "
                              "and per principal <= max_sessions")
        if self.max_url_bytes > self.max_header_bytes:
            raise ConfigError("max_url_bytes is larger than max_header_bytes; the URL is part of the request head")
        if self.max_header_bytes < self.max_token_bytes + 2048:
            raise ConfigError("max_header_bytes must leave room for a bearer token of max_token_bytes plus 2048 bytes")
        if self.alert_webhook_url is not None:
            _check_webhook_url(self.alert_webhook_url)
        elif self.alert_webhook_secret is not None:
            raise ConfigError("an alert webhook secret is set but no --alert-webhook-url to sign for")
        if self.audience is not None and not self.audience.strip():
            raise ConfigError("audience is empty; leave it unset to use the MCP endpoint URL")
        unsafe_algs = sorted(set(self.algorithms) - ASYMMETRIC_ALGORITHMS)
        if unsafe_algs or not self.algorithms:
            raise ConfigError(
                f"algorithms {unsafe_algs or '[]'} are not allowed; use asymmetric ones (RS256, ES256, EdDSA)"
            )
        if not self.local_passwords and not self.login_providers:
            raise ConfigError("--no-local-passwords needs a --login-provider: otherwise nobody can sign in")
        if self.issuer is not None and self.login_providers:
            raise ConfigError("--login-provider is for the embedded authorization server; with --issuer, people "
                              "sign in wherever that issuer has them sign in")
        if self.issuer is None:
            if self.jwks_url or self.introspection_url:
                raise ConfigError("--jwks-url and --introspection-url need --issuer, the identity provider's issuer")
            return
        _check_origin("issuer", self.issuer, allow_path=True)
        if not (self.jwks_url or self.introspection_url):
            raise ConfigError(
                "--issuer needs --jwks-url (signed JWT access tokens) or --introspection-url (opaque tokens)"
            )
        if self.jwks_url:
            _check_origin("JWKS URL", self.jwks_url, allow_path=True)
        if self.introspection_url:
            _check_origin("introspection URL", self.introspection_url, allow_path=True)
            if not (self.introspection_client_id and self.introspection_client_secret):
                raise ConfigError(
                    "--introspection-url needs --introspection-client-id and --introspection-client-secret "
                    "(RFC 7662 §2.1: the resource server authenticates to the introspection endpoint)"
                )

    def allowed_host_headers(self) -> frozenset[str]:
        """Host header values this server answers to (DNS-rebinding protection)."""
        netloc = urlsplit(self.base_url).netloc.lower()
        hosts = {netloc, *(h.lower() for h in self.allowed_hosts)}
        host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 else (netloc, "", "")
        if is_loopback_host(host or netloc):
            suffix = f":{port}" if port else ""
            hosts |= {f"127.0.0.1{suffix}", f"localhost{suffix}", f"[::1]{suffix}"}
        return frozenset(hosts)

    def allowed_origin_headers(self) -> frozenset[str]:
        parts = urlsplit(self.base_url)
        return frozenset({f"{parts.scheme}://{parts.netloc}".lower(), *(o.lower() for o in self.allowed_origins)})


def check_resource_url(url: str) -> None:
    """A canonical resource URI (MCP: scheme and host, optional path, no fragment, no trailing slash)."""
    _check_origin("resource", url, allow_path=True)
    if url.endswith("/"):
        raise ConfigError(f"resource {url!r} ends with '/'; give the canonical URI without it")


def _check_trusted_proxy(network: str) -> None:
    """A proxy's address or network; not one that holds every address (any client could then name
    itself, since no hop would be left untrusted)."""
    try:
        parsed = ipaddress.ip_network(network)
    except ValueError:
        raise ConfigError(f"trusted proxy {network!r} is not an IP address or network such as 10.0.0.0/8 "
                          "(no host bits set after the prefix)") from None
    if parsed.prefixlen == 0:
        raise ConfigError(f"trusted proxy {network!r} trusts every address, so any client could choose its own; "
                          "list your proxies' addresses")


def _check_webhook_url(url: str) -> None:
    """Alerts leave the host only over https (plain http to loopback only). The URL is not echoed:
    webhook URLs often carry their secret in the path or query."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError("the alert webhook URL is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the alert webhook URL must be an absolute https URL")
    if parts.username or parts.password or parts.fragment:
        raise ConfigError("the alert webhook URL must not contain credentials or a fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError("the alert webhook URL uses plain http; use https (plain http only to a loopback address)")


def _check_origin(what: str, url: str, *, allow_path: bool) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise ConfigError(f"{what} {url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {url!r} must be an absolute http(s) URL")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{what} {url!r} must not contain a query, fragment or credentials")
    if not allow_path and parts.path:
        raise ConfigError(
            f"{what} {url!r} must be an origin such as https://mcp.example.com (no path); "
            f"the MCP endpoint is served at {MCP_PATH}"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"{what} {url!r} uses plain http; OAuth 2.1 requires https except on loopback addresses"
        )
