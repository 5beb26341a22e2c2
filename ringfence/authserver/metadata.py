"""RFC 8414 authorization server metadata (also served at the OpenID discovery path)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from ringfence.authserver.oauth import ASSERTION_SIGNING_ALGORITHMS, CLIENT_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from ringfence.authserver.pages import PRIVACY_PATH


def server_metadata(issuer: str, scopes_supported: list[str]) -> dict[str, Any]:
    """The metadata document; ``issuer`` is byte-identical to every other place it appears."""
    document = {
        "issuer": issuer,  # RFC 8414 §3.3 / MCP: identical to the issuer used to build the URL
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "jwks_uri": f"{issuer}/jwks.json",
        "scopes_supported": scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        # ChatGPT prefers private_key_jwt when offered (Apps SDK auth); "none" stays for public clients.
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # RFC 8414 §2: required with private_key_jwt; asymmetric algorithms only, never "none".
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_SIGNING_ALGORITHMS,
        "code_challenge_methods_supported": ["S256"],  # MCP: clients refuse to proceed without it
        "client_id_metadata_document_supported": True,
        "authorization_response_iss_parameter_supported": True,  # RFC 9207 §3
        # RFC 8414 §2: a page on the server's data use; the disclosure, served wherever this server runs.
        "op_policy_uri": f"{issuer}{PRIVACY_PATH}",
        # OpenID Connect Discovery requires these two even though no ID token is issued here.
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }
    AuthorizationServerMetadata(document).validate()
    return document
