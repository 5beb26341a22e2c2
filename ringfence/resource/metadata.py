"""RFC 9728 protected resource metadata, served at the root and path-inserted well-known URLs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ringfence.policy import ScopeCatalog


def resource_metadata(resource_url: str, issuer: str, catalog: ScopeCatalog, resource_name: str,
                      policy_url: str | None = None) -> dict[str, Any]:
    """The document for the MCP endpoint ``resource_url``, whose tokens ``issuer`` issues."""
    document = {
        # RFC 9728 §3.3: clients require ``resource`` to equal, byte for byte, the URL they used.
        "resource": resource_url,
        "authorization_servers": [issuer],  # MCP: MUST list at least one
        "scopes_supported": catalog.supported(),
        "bearer_methods_supported": ["header"],  # RFC 6750 §2.1 only; never the query string
        "resource_name": resource_name,
    }
    if policy_url is not None:
        # RFC 9728 §2: "a human-readable page that contains information about how the client can use the
        # data provided by the protected resource": the served disclosure (/privacy).
        document["resource_policy_uri"] = policy_url
    return document


def metadata_endpoint(document: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A Starlette endpoint answering the (precomputed) document; public and cacheable (CORS: ops/cors.py)."""
    headers = {"cache-control": "public, max-age=300"}

    async def endpoint(_request: Request) -> JSONResponse:
        return JSONResponse(document, headers=headers)

    return endpoint
