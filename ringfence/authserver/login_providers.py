"""Login providers: where people sign in when the app's users already have an account elsewhere.

Each provider is one ``--login-provider`` value (repeatable; ``RINGFENCE_LOGIN_PROVIDERS`` as a JSON
list), comma-separated ``key=value`` pairs::

    issuer=https://idp.example.com,client-id=ringfence,client-secret-file=/run/secrets/idp,allowed-domain=example.com
    github,client-id=Iv1.abc,client-secret-env=GITHUB_SECRET,allowed-org=acme

Any OpenID Connect provider is named by its issuer; ``github`` is GitHub's OAuth apps (no OpenID).
The client secret comes from a file or an environment variable, never the command line (where
``ps`` shows it). Who may sign in is declared, never implied: verified e-mail domains, e-mail
addresses, GitHub organisations, or ``allow-any-account=yes`` for a provider whose every account
is a colleague (a company tenant); a provider with none of these stops start-up.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from ringfence.config import ConfigError, is_loopback_host
from ringfence.declaration import PROVIDER_NAME

GITHUB = "github"
GITHUB_ISSUER = "https://github.com"  # GitHub has no OpenID issuer: its identities are named under this one
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
ORG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
REPEATABLE = frozenset({"allowed-domain", "allowed-email", "allowed-org", "scope"})
KEYS = frozenset({"name", "label", "issuer", "client-id", "client-secret-file", "client-secret-env",
                  "allow-any-account", "github-url", "github-api-url"}) | REPEATABLE


@dataclass(frozen=True)
class Admission:
    """Who may sign in through a provider: any one rule admits."""

    domains: frozenset[str] = frozenset()  # of a verified e-mail address, exactly (no subdomains)
    emails: frozenset[str] = frozenset()  # verified e-mail addresses, compared case-insensitively
    orgs: frozenset[str] = frozenset()  # GitHub organisations the person is a member of
    anyone: bool = False

    def admits(self, email: str | None, orgs: frozenset[str] = frozenset()) -> bool:
        """``email`` is the verified address, or ``None`` when the provider did not verify one."""
        if self.anyone:
            return True
        if email is not None:
            address = email.lower()
            if address in self.emails or address.rpartition("@")[2] in self.domains:
                return True
        return bool(self.orgs & {org.lower() for org in orgs})

    @property
    def needs_email(self) -> bool:
        return bool(self.domains or self.emails)

    def describe(self) -> str:
        if self.anyone:
            return "any account of the provider"
        rules = [*(f"@{domain}" for domain in sorted(self.domains)), *sorted(self.emails),
                 *(f"members of {org}" for org in sorted(self.orgs))]
        return ", ".join(rules)


@dataclass(frozen=True)
class LoginProvider:
    name: str  # in the callback path and in the usernames of the accounts it provisions
    label: str  # the sign-in page's "Continue with {label}"
    kind: Literal["oidc", "github"]
    issuer: str  # OpenID: the provider's issuer; GitHub: GITHUB_ISSUER (identities are (issuer, subject))
    client_id: str
    client_secret: str = field(repr=False)
    admission: Admission = Admission()
    scopes: tuple[str, ...] = ()  # asked for besides the identity scopes
    github_url: str = GITHUB_ISSUER  # GitHub Enterprise Server, or the tests' stand-in
    github_api_url: str = "https://api.github.com"

    def callback_path(self) -> str:
        return f"/login/{self.name}/callback"


@cache  # read once per process: serving and the start-up lines both ask, and each reads the secret files
def parse_login_providers(specs: tuple[str, ...]) -> tuple[LoginProvider, ...]:
    providers = tuple(parse_login_provider(spec) for spec in specs)
    names = [provider.name for provider in providers]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"two login providers are named {name!r}; give each a different name=")
    return providers


def parse_login_provider(spec: str) -> LoginProvider:
    pairs = _pairs(spec)
    kind: Literal["oidc", "github"] = GITHUB if GITHUB in pairs else "oidc"  # type: ignore[assignment]
    one = {key: values[-1] for key, values in pairs.items() if key not in REPEATABLE and values}
    if kind == "oidc" and "issuer" not in one:
        raise ConfigError(f"login provider {spec!r}: give issuer=https://… (an OpenID provider) or start with github")
    if kind == GITHUB and "issuer" in one:
        raise ConfigError("login provider github: GitHub is not an OpenID provider; drop issuer=")
    issuer = _url("issuer", one["issuer"]) if kind == "oidc" else GITHUB_ISSUER
    name = one.get("name") or (GITHUB if kind == GITHUB else _name_from(issuer))
    if not PROVIDER_NAME.match(name):
        raise ConfigError(f"login provider name {name!r}: 1-32 lower-case letters, digits or '-'")
    if "client-id" not in one:
        raise ConfigError(f"login provider {name}: give client-id=")
    admission = _admission(name, kind, pairs, anyone=one.get("allow-any-account", "no"))
    return LoginProvider(
        name=name, label=one.get("label") or ("GitHub" if kind == GITHUB else urlsplit(issuer).hostname or name),
        kind=kind, issuer=issuer, client_id=one["client-id"], client_secret=_secret(name, one),
        admission=admission, scopes=tuple(pairs.get("scope", ())),
        github_url=_url("github-url", one.get("github-url", GITHUB_ISSUER)),
        github_api_url=_url("github-api-url", one.get("github-api-url", "https://api.github.com")),
    )


def _pairs(spec: str) -> dict[str, list[str]]:
    pairs: dict[str, list[str]] = {}
    for part in (part.strip() for part in spec.split(",")):
        key, equals, value = part.partition("=")
        key, value = key.strip().lower(), value.strip()
        if key == GITHUB and not equals:
            pairs[GITHUB] = []
            continue
        if key == "client-secret":
            raise ConfigError("a login provider's client-secret is never given on the command line (ps shows it): "
                              "use client-secret-file=PATH or client-secret-env=VARIABLE")
        if key not in KEYS or not equals or not value:
            raise ConfigError(f"login provider: {part!r} is not one of {', '.join(sorted(KEYS))} with a value")
        if key in pairs and key not in REPEATABLE:
            raise ConfigError(f"login provider: {key}= is given twice")
        pairs.setdefault(key, []).append(value)
    return pairs


def _url(key: str, value: str) -> str:
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname or ""))
    if not secure or not parts.hostname or parts.query or parts.fragment or value.endswith("/"):
        raise ConfigError(f"login provider {key}={value!r}: an https URL (http only on loopback) with no query, "
                          "fragment or trailing '/'")
    return value


def _name_from(issuer: str) -> str:
    host = (urlsplit(issuer).hostname or "").split(".")
    return re.sub(r"[^a-z0-9-]", "-", (host[-2] if len(host) > 1 else host[0]).lower())[:32] or "login"


def _secret(name: str, one: dict[str, str]) -> str:
    if "client-secret-file" in one and "client-secret-env" in one:
        raise ConfigError(f"login provider {name}: give client-secret-file= or client-secret-env=, not both")
    if "client-secret-file" in one:
        try:
            secret = Path(one["client-secret-file"]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"login provider {name}: cannot read client-secret-file: {exc.strerror}") from None
    elif "client-secret-env" in one:
        secret = os.environ.get(one["client-secret-env"], "").strip()
    else:
        raise ConfigError(f"login provider {name}: give client-secret-file=PATH or client-secret-env=VARIABLE")
    if not secret:
        raise ConfigError(f"login provider {name}: its client secret is empty")
    return secret


def _admission(name: str, kind: str, pairs: dict[str, list[str]], *, anyone: str) -> Admission:
    if anyone not in ("yes", "no"):
        raise ConfigError(f"login provider {name}: allow-any-account= is yes or no")
    domains = frozenset(domain.lower().lstrip("@") for domain in pairs.get("allowed-domain", ()))
    emails = frozenset(email.lower() for email in pairs.get("allowed-email", ()))
    orgs = frozenset(org.lower() for org in pairs.get("allowed-org", ()))
    for domain in domains:
        if not DOMAIN.match(domain):
            raise ConfigError(f"login provider {name}: allowed-domain={domain!r} is not a domain name")
    for email in emails:
        if email.count("@") != 1 or not DOMAIN.match(email.rpartition("@")[2]):
            raise ConfigError(f"login provider {name}: allowed-email={email!r} is not an e-mail address")
    if orgs and kind != GITHUB:
        raise ConfigError(f"login provider {name}: allowed-org= is for github")
    for org in orgs:
        if not ORG.match(org):
            raise ConfigError(f"login provider {name}: allowed-org={org!r} is not a GitHub organisation name")
    admission = Admission(domains, emails, orgs, anyone == "yes")
    if not (domains or emails or orgs or admission.anyone):
        raise ConfigError(f"login provider {name}: say who may sign in (allowed-domain=, allowed-email=, "
                          "allowed-org= for github), or allow-any-account=yes")
    return admission


def describe_sign_in(providers: tuple[LoginProvider, ...], *, local_passwords: bool) -> list[str]:
    """Start-up lines: where people sign in, and who may."""
    lines = [f"sign-in with {provider.label} ({provider.issuer}) for {provider.admission.describe()}"
             for provider in providers]
    if providers and not local_passwords:
        lines.append("local passwords are turned off: people sign in at the login providers only")
    return lines


def unsafe_admissions(providers: tuple[LoginProvider, ...]) -> list[str]:
    return [f"login provider {provider.name} admits every account it signs in (allow-any-account=yes)"
            for provider in providers if provider.admission.anyone]
