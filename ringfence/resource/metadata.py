"""RFC 9728 protected resource metadata, served at the root and path-inserted well-known URLs."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ringfence.config import Settings
from ringfence.policy import ScopeCatalog


def resource_metadata(settings: Settings, catalog: ScopeCatalog, resource_name: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        # RFC 9728 §3.3: clients require ``resource`` to equal, byte for byte, the URL they used.
        "resource": settings.resource_url,
        "scopes_supported": catalog.supported(),
        "bearer_methods_supported": ["header"],  # RFC 6750 §2.1 only; never the query string
        "resource_name": resource_name,
    }
    if settings.issuer is not None:
        document["authorization_servers"] = [settings.issuer]  # MCP: MUST list at least one
    return document


def metadata_endpoint(document: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A Starlette endpoint answering the (precomputed) document; public, cacheable, CORS-open."""
    headers = {"cache-control": "public, max-age=300", "access-control-allow-origin": "*"}

    async def endpoint(_request: Request) -> JSONResponse:
        return JSONResponse(document, headers=headers)

    return endpoint
