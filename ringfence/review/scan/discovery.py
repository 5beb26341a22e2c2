"""Discovery: the protected-resource metadata (RFC 9728) and the authorization server's (RFC 8414 / OpenID)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ringfence.review.report import Finding
from ringfence.review.scan import catalogue as c
from ringfence.review.scan.context import ScanContext, failed, is_loopback, passed, skipped
from ringfence.review.scan.probe import Exchange, OutOfScope, Unreachable
from ringfence.review.scan.wire import challenge_parameters

PRM_SUFFIX = "/.well-known/oauth-protected-resource"


_SERVER_CHECKS = (c.AS_METADATA, c.AS_ISSUER, c.AS_PKCE, c.AS_PKCE_PLAIN, c.AS_REGISTRATION, c.AS_ISS_PARAMETER,
                  c.AS_HTTPS)
_AFTER_METADATA = (c.PRM_ROOT_FORM, c.PRM_RESOURCE, c.PRM_AUTHORIZATION_SERVERS, c.PRM_OFFLINE_ACCESS,
                   c.PRM_BEARER_METHODS, *_SERVER_CHECKS)


def metadata_urls(url: str) -> tuple[str, str]:
    """RFC 9728 §3.1: the path-inserted form, then the root form."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    root = urlunsplit((parts.scheme, parts.netloc, PRM_SUFFIX, "", ""))
    return urlunsplit((parts.scheme, parts.netloc, PRM_SUFFIX + path, "", "")), root


def server_metadata_urls(issuer: str) -> list[str]:
    """MCP authorization §Authorization Server Metadata Discovery: the order clients MUST try."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    base = (parts.scheme, parts.netloc)
    if not path:
        return [urlunsplit((*base, "/.well-known/oauth-authorization-server", "", "")),
                urlunsplit((*base, "/.well-known/openid-configuration", "", ""))]
    return [urlunsplit((*base, "/.well-known/oauth-authorization-server" + path, "", "")),
            urlunsplit((*base, "/.well-known/openid-configuration" + path, "", "")),
            urlunsplit((*base, path + "/.well-known/openid-configuration", "", ""))]


def _document(ctx: ScanContext, url: str) -> tuple[Exchange | None, dict[str, Any] | None]:
    try:
        exchange = ctx.keep(ctx.probe.request("GET", url, headers={"accept": "application/json"}))
    except (OutOfScope, Unreachable):
        return None, None
    document = exchange.json() if exchange.status == 200 else None
    return exchange, document if isinstance(document, dict) else None


def run(ctx: ScanContext) -> Iterator[Finding]:
    path_url, root_url = metadata_urls(ctx.url)
    path_answer, path_document = _document(ctx, path_url)
    root_answer, root_document = (path_answer, path_document) if root_url == path_url else _document(ctx, root_url)
    announced = _announced_metadata_url(ctx.challenge)
    document, source = (path_document, path_url) if path_document is not None else (root_document, root_url)
    if announced and announced not in (path_url, root_url) and ctx.probe.allows(announced):
        _, announced_document = _document(ctx, announced)
        if announced_document is not None:
            document, source = announced_document, announced
    if document is None:
        if not ctx.protected:
            for check in (c.PRM_MISSING, *_AFTER_METADATA):
                yield skipped(check, "the server asks for no token and publishes no metadata (see SC201)")
            return
        evidence = [answer for answer in (path_answer, root_answer) if answer is not None]
        yield failed(c.PRM_MISSING, "the server asks for a token but publishes no protected-resource metadata "
                     f"at {path_url} or {root_url}", *evidence, location=path_url)
        for check in _AFTER_METADATA:
            yield skipped(check, "no protected-resource metadata (see SC101)")
        return
    ctx.resource_metadata, ctx.resource_metadata_url = document, source
    yield passed(c.PRM_MISSING, f"metadata at {source}", source)
    if path_document is not None and root_document is not None:
        yield passed(c.PRM_ROOT_FORM, "both well-known forms answer", root_url)
    else:
        missing, answer = (root_url, root_answer) if path_document is not None else (path_url, path_answer)
        yield failed(c.PRM_ROOT_FORM, f"no metadata at {missing}; clients that try that form first fail to link",
                     *([answer] if answer else []), location=missing)
    yield from _check_resource(ctx, document, source)
    yield from _check_server_metadata(ctx, document, source)


def _announced_metadata_url(challenge: Exchange | None) -> str | None:
    if challenge is None:
        return None
    return challenge_parameters(challenge.header("www-authenticate")).get("resource_metadata")


def _check_resource(ctx: ScanContext, document: dict[str, Any], source: str) -> Iterator[Finding]:
    resource = document.get("resource")
    if resource == ctx.url:
        yield passed(c.PRM_RESOURCE, f"resource is {resource}", source)
    else:
        near = isinstance(resource, str) and resource.rstrip("/").lower() == ctx.url.rstrip("/").lower()
        detail = " (they differ only in case or a trailing slash, which is enough to break clients)" if near else ""
        yield failed(c.PRM_RESOURCE, f"resource is {resource!r}, the scanned URL is {ctx.url!r}{detail}",
                     f"GET {source} -> resource={resource!r}", location=source)
    servers = document.get("authorization_servers")
    if isinstance(servers, list) and servers and all(isinstance(server, str) and server for server in servers):
        yield passed(c.PRM_AUTHORIZATION_SERVERS, f"authorization_servers: {', '.join(servers)}", source)
        ctx.issuer = servers[0]
    else:
        yield failed(c.PRM_AUTHORIZATION_SERVERS, f"authorization_servers is {servers!r}",
                     f"GET {source} -> authorization_servers={servers!r}", location=source)
    scopes = document.get("scopes_supported")
    if isinstance(scopes, list) and "offline_access" in scopes:
        yield failed(c.PRM_OFFLINE_ACCESS, "scopes_supported lists offline_access",
                     f"GET {source} -> scopes_supported={scopes!r}", location=source)
    else:
        yield passed(c.PRM_OFFLINE_ACCESS, "offline_access not advertised", source)
    methods = document.get("bearer_methods_supported")
    if isinstance(methods, list) and any(method != "header" for method in methods):
        yield failed(c.PRM_BEARER_METHODS, f"bearer_methods_supported is {methods!r}",
                     f"GET {source} -> bearer_methods_supported={methods!r}", location=source)
    else:
        yield passed(c.PRM_BEARER_METHODS, "header only", source)


def _check_server_metadata(ctx: ScanContext, document: dict[str, Any], source: str) -> Iterator[Finding]:
    issuer = ctx.issuer
    if issuer is None:
        for check in _SERVER_CHECKS:
            yield skipped(check, "no authorization server advertised (see SC104)")
        return
    ctx.probe.allow(issuer)  # the one origin the scan may reach besides the server's own
    tried: list[Exchange] = []
    metadata, metadata_url = None, ""
    for url in server_metadata_urls(issuer):
        answer, metadata = _document(ctx, url)
        if answer is not None:
            tried.append(answer)
        if metadata is not None:
            metadata_url = url
            break
    if metadata is None:
        yield failed(c.AS_METADATA, f"no RFC 8414 or OpenID metadata for issuer {issuer}", *tried, location=issuer)
        for check in _SERVER_CHECKS[1:]:
            yield skipped(check, "no authorization-server metadata (see SC110)")
        return
    ctx.server_metadata = metadata
    yield passed(c.AS_METADATA, f"metadata at {metadata_url}", metadata_url)
    shown = metadata_url

    def said(key: str) -> str:
        return f"GET {shown} -> {key}={metadata.get(key)!r}"

    if metadata.get("issuer") == issuer:
        yield passed(c.AS_ISSUER, f"issuer is {issuer}", metadata_url)
    else:
        yield failed(c.AS_ISSUER, f"issuer is {metadata.get('issuer')!r}, advertised as {issuer!r}; clients MUST "
                     "NOT use this metadata", said("issuer"), location=metadata_url)
    methods = metadata.get("code_challenge_methods_supported")
    methods = methods if isinstance(methods, list) else []
    if "S256" in methods:
        yield passed(c.AS_PKCE, "S256 advertised", metadata_url)
    else:
        yield failed(c.AS_PKCE, "code_challenge_methods_supported lacks S256, so MCP clients refuse to proceed",
                     said("code_challenge_methods_supported"), location=metadata_url)
    if "plain" in methods:
        yield failed(c.AS_PKCE_PLAIN, "plain is offered", said("code_challenge_methods_supported"),
                     location=metadata_url)
    else:
        yield passed(c.AS_PKCE_PLAIN, "plain not offered", metadata_url)
    cimd = metadata.get("client_id_metadata_document_supported") is True
    dcr = isinstance(metadata.get("registration_endpoint"), str)
    if cimd or dcr:
        ways = " and ".join(way for way, offered in (("client ID metadata documents", cimd),
                                                      ("dynamic registration", dcr)) if offered)
        yield passed(c.AS_REGISTRATION, ways, metadata_url)
    else:
        yield failed(c.AS_REGISTRATION, "neither client ID metadata documents nor a registration endpoint: only "
                     "pre-registered clients can link", said("client_id_metadata_document_supported"),
                     said("registration_endpoint"), location=metadata_url)
    if metadata.get("authorization_response_iss_parameter_supported") is True:
        yield passed(c.AS_ISS_PARAMETER, "iss advertised", metadata_url)
    else:
        yield failed(c.AS_ISS_PARAMETER, "authorization_response_iss_parameter_supported is not true (mix-up "
                     "attacks between authorization servers go unnoticed)",
                     said("authorization_response_iss_parameter_supported"), location=metadata_url)
    endpoints = {key: value for key, value in metadata.items()
                 if (key == "issuer" or key.endswith("_endpoint") or key == "jwks_uri") and isinstance(value, str)}
    plain = {key: value for key, value in endpoints.items() if not value.startswith("https://") and
             not is_loopback(value)}
    if plain:
        yield failed(c.AS_HTTPS, "not https: " + ", ".join(f"{key} {value}" for key, value in plain.items()),
                     *(said(key) for key in plain), location=metadata_url)
    else:
        yield passed(c.AS_HTTPS, "every endpoint is https (or loopback)", metadata_url)
    jwks_uri = metadata.get("jwks_uri")
    if isinstance(jwks_uri, str) and ctx.probe.allows(jwks_uri):
        _, ctx.jwks = _document(ctx, jwks_uri)

