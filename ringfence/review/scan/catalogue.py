"""Every check ``ringfence scan`` runs, with the rule it comes from and the fix. Ids are stable:
SC1xx discovery, SC2xx challenges, SC3xx forged tokens, SC4xx a real token (``--token``),
SC5xx tools, SC6xx widgets, SC7xx transport, SC8xx ``--active`` checks."""

from __future__ import annotations

from ringfence.review.report import Check

MCP_AUTH = "MCP authorization (2025-11-25, 2026-07-28)"
APPS_SDK = "Apps SDK security & privacy guide"

# --- discovery --------------------------------------------------------------------------------------
PRM_MISSING = Check(
    "SC101", "Protected-resource metadata is published", "high",
    f"RFC 9728 §3; {MCP_AUTH} §Protected Resource Metadata: servers MUST implement RFC 9728",
    "Serve the metadata at /.well-known/oauth-protected-resource<mcp path> (and at the root form) with "
    "`resource` and `authorization_servers`.")
PRM_ROOT_FORM = Check(
    "SC102", "Protected-resource metadata answers at both well-known forms", "low",
    f"RFC 9728 §3.1; {MCP_AUTH}: clients try the path form, then the root form",
    "Serve the same document at /.well-known/oauth-protected-resource as well as the path-inserted form.")
PRM_RESOURCE = Check(
    "SC103", "`resource` is the URL clients use", "high",
    "RFC 9728 §3.3: a client MUST check that `resource` is identical to the URL it requested",
    "Set `resource` to exactly the public MCP URL (same scheme, host, port and path; no trailing slash).")
PRM_AUTHORIZATION_SERVERS = Check(
    "SC104", "`authorization_servers` names at least one issuer", "high",
    f"{MCP_AUTH} §Protected Resource Metadata: MUST include `authorization_servers`",
    "List the issuer of the authorization server that mints tokens for this resource.")
PRM_OFFLINE_ACCESS = Check(
    "SC105", "`offline_access` is not advertised as a resource scope", "low",
    f"{MCP_AUTH} §Scope selection: servers SHOULD NOT include offline_access in scopes_supported",
    "Remove offline_access from scopes_supported; clients ask for refresh tokens themselves.")
PRM_BEARER_METHODS = Check(
    "SC106", "Tokens are accepted in the Authorization header only", "medium",
    f"{MCP_AUTH} §Token usage: access tokens MUST NOT be included in the URI query string",
    "Advertise bearer_methods_supported [\"header\"] and refuse tokens sent any other way.")
AS_METADATA = Check(
    "SC110", "Authorization-server metadata is discoverable", "high",
    f"RFC 8414 §3 / OpenID Connect Discovery 1.0; {MCP_AUTH} §Authorization Server Metadata Discovery",
    "Serve /.well-known/oauth-authorization-server (or openid-configuration) for the advertised issuer.")
AS_ISSUER = Check(
    "SC111", "The metadata's `issuer` is the advertised issuer", "high",
    "RFC 8414 §3.3: `issuer` MUST be identical to the issuer the metadata URL was built from",
    "Make `issuer` in the metadata byte-identical to the entry in `authorization_servers` (no trailing slash).")
AS_PKCE = Check(
    "SC112", "PKCE with S256 is advertised", "high",
    f"OAuth 2.1 §7.5.2; {MCP_AUTH} §PKCE: if code_challenge_methods_supported is absent clients MUST refuse",
    "Advertise code_challenge_methods_supported [\"S256\"] and require a challenge on every authorization.")
AS_PKCE_PLAIN = Check(
    "SC113", "The `plain` PKCE method is not offered", "medium",
    f"OAuth 2.1 §4.1.1; {MCP_AUTH} §PKCE: clients MUST use S256",
    "Remove `plain` from code_challenge_methods_supported.")
AS_REGISTRATION = Check(
    "SC114", "Clients can register themselves", "medium",
    f"{MCP_AUTH} §Client Registration: client ID metadata documents (preferred) or dynamic registration",
    "Support client ID metadata documents (client_id_metadata_document_supported) or RFC 7591 registration.")
AS_ISS_PARAMETER = Check(
    "SC115", "Authorization responses carry `iss`", "low",
    f"RFC 9207 §2-3; {MCP_AUTH} (2026-07-28): authorization servers SHOULD include `iss` and advertise it",
    "Add `iss` to every authorization response and set authorization_response_iss_parameter_supported.")
AS_HTTPS = Check(
    "SC116", "Authorization-server endpoints use HTTPS", "high",
    f"OAuth 2.1 §1.5; {MCP_AUTH} §Communication security: all AS endpoints MUST be served over HTTPS",
    "Serve the issuer and every endpoint in its metadata over https (loopback is the only exception).")

# --- challenges -------------------------------------------------------------------------------------
NO_AUTHORIZATION = Check(
    "SC201", "The server requires authorization", "medium",
    f"{APPS_SDK}: OAuth 2.1 for anything tied to a user; {MCP_AUTH} (optional, but then nothing is protected)",
    "Protect the server with OAuth 2.1 (RFC 9728 metadata, 401 challenges, per-tool scopes), or make sure "
    "every tool only serves public data and changes nothing.")
CHALLENGE_HEADER = Check(
    "SC202", "A refused request carries a `WWW-Authenticate` challenge with `resource_metadata`", "high",
    f"RFC 6750 §3; {MCP_AUTH} §Protected Resource Metadata Discovery: resource_metadata in the 401 challenge",
    "Answer 401 with `WWW-Authenticate: Bearer resource_metadata=\"<metadata URL>\", scope=\"...\"`.")
CHALLENGE_SCOPE = Check(
    "SC203", "The challenge says which scopes to ask for", "medium",
    f"{MCP_AUTH} §Scope Selection Strategy: servers SHOULD include `scope` in WWW-Authenticate",
    "Add `scope=\"...\"` with the scopes the refused operation needs.")
CHALLENGE_ERROR = Check(
    "SC204", "No `error=` when no credentials were sent", "low",
    "RFC 6750 §3.1: a request without credentials should get a challenge without an error code",
    "Omit `error` (and `error_description`) when the request carried no token; keep `invalid_token` for bad ones.")
PUBLIC_TOOL_REFUSED = Check(
    "SC205", "Tools declared public answer without a token", "low",
    f"{APPS_SDK} (per-tool securitySchemes, `noauth`)",
    "Either let `noauth` tools run without a token or remove `noauth` from their securitySchemes.")
TOOL_REFUSAL_FORM = Check(
    "SC206", "A protected tool's refusal is a challenge the client can follow", "medium",
    f"{APPS_SDK} (`_meta[\"mcp/www_authenticate\"]` on the tool result); {MCP_AUTH} (401 with WWW-Authenticate)",
    "Refuse with HTTP 401 and WWW-Authenticate, or with a tool error whose _meta[\"mcp/www_authenticate\"] "
    "holds the challenge (what ChatGPT needs to start linking).")
TOOL_UNPROTECTED = Check(
    "SC207", "Tools that declare OAuth refuse anonymous calls", "high",
    f"{APPS_SDK} (securitySchemes must match what the server enforces); {MCP_AUTH} §Access control",
    "Check the token (and its scopes) before the tool runs; a tool without `noauth` must not run anonymously.")

# --- forged tokens ----------------------------------------------------------------------------------
_FORGED_RULE = f"OAuth 2.1 §5.2; RFC 6750 §3.1; {MCP_AUTH} §Token Handling: invalid tokens MUST receive 401"
_FORGED_FIX = ("Verify every token's signature with the issuer's keys and an allow-list of algorithms, and its "
               "iss, aud (RFC 8707) and exp; answer 401 with error=\"invalid_token\".")
FORGED_MALFORMED = Check("SC301", "A malformed token is refused", "high", _FORGED_RULE, _FORGED_FIX)
FORGED_NONE = Check("SC302", "An unsigned (`alg: none`) token is refused", "critical", _FORGED_RULE, _FORGED_FIX)
FORGED_SIGNATURE = Check("SC303", "A token signed by another key is refused", "critical", _FORGED_RULE, _FORGED_FIX)
FORGED_HS256 = Check("SC304", "An HS256 token keyed with the issuer's public key is refused", "critical",
                     f"RFC 8725 §2.1, §3.1 (algorithm confusion); {_FORGED_RULE}", _FORGED_FIX)
FORGED_EXPIRED = Check("SC305", "An expired token is refused", "high", _FORGED_RULE, _FORGED_FIX)
FORGED_AUDIENCE = Check("SC306", "A token for another audience is refused", "critical",
                        f"RFC 8707 §2; {MCP_AUTH} §Token Handling: MUST validate the audience", _FORGED_FIX)
TOKEN_IN_QUERY = Check(
    "SC307", "A token in the query string is not accepted", "high",
    f"{MCP_AUTH} §Token usage: access tokens MUST NOT be included in the URI query string; RFC 6750 §5.3",
    "Read the token from the Authorization header only; treat a query-string token as no credentials.")

# --- a real token -----------------------------------------------------------------------------------
TOKEN_ACCEPTED = Check(
    "SC401", "The token given with --token is accepted", "info", "scan precondition",
    "Pass an unexpired access token issued for this server's URL.")
SCOPE_ENFORCED = Check(
    "SC402", "Each tool's scopes are enforced", "high",
    f"{MCP_AUTH} §Scope challenge handling: 403 insufficient_scope; {APPS_SDK} (scopes enforced on every call)",
    "Check the token's scopes against the tool's before it runs; refuse with 403 error=\"insufficient_scope\".")
SCOPE_CHALLENGE = Check(
    "SC403", "An insufficient-scope refusal names the scopes needed", "medium",
    f"{MCP_AUTH} §Runtime insufficient scope: 403 with error=\"insufficient_scope\", scope=, resource_metadata",
    "Add `scope=\"...\"` and `resource_metadata` to the 403 challenge so the client can step up.")
AUDIENCE_BOUND = Check(
    "SC404", "The token given was issued for this server", "critical",
    f"RFC 8707 §2; {MCP_AUTH} §Token Handling: MUST only accept tokens issued for this resource",
    "Reject tokens whose `aud` does not contain this server's canonical URL.")

# --- tools ------------------------------------------------------------------------------------------
ANNOTATIONS_PRESENT = Check(
    "SC501", "Every tool sets all four annotation hints", "medium",
    f"{APPS_SDK} (app review: readOnlyHint, destructiveHint, openWorldHint; spec defaults are the unsafe ones)",
    "Set readOnlyHint, destructiveHint, idempotentHint and openWorldHint explicitly on every tool.")
ANNOTATIONS_CONSISTENT = Check(
    "SC502", "Annotation hints match what the tool's name says it does", "high",
    f"{APPS_SDK} (hints decide whether the user is asked); MCP tools: annotations describe behaviour",
    "A tool named delete_/send_/pay_… is not read-only; mark deletes destructiveHint true and sends openWorldHint.")
DESCRIPTION_LINT = Check(
    "SC503", "Tool descriptions carry no instructions to the model", "high",
    f"{APPS_SDK} (review tool descriptions; defense against prompt injection); ringfence lint RF001-RF005, RF008",
    "Describe only what the tool does; remove hidden text, orders to the model and references to other tools.")
SECURITY_SCHEMES = Check(
    "SC504", "Tools declare securitySchemes that match the server", "low",
    f"{APPS_SDK} (per-tool securitySchemes: noauth / oauth2 with scopes)",
    "Declare securitySchemes on each tool (oauth2 with the scopes it needs; noauth only where it runs "
    "without a token), using scopes the metadata advertises.")

# --- widgets ----------------------------------------------------------------------------------------
WIDGET_CSP = Check(
    "SC601", "Each widget declares a CSP", "high",
    f"{APPS_SDK} (widgets run under a strict CSP: _meta.ui.csp / openai/widgetCSP)",
    "Declare connect, resource (and only if needed frame) domains for the widget; everything else is blocked.")
WIDGET_CSP_WILDCARD = Check(
    "SC602", "Widget CSP domains are exact https origins", "high",
    f"{APPS_SDK} (strict CSP); CSP Level 3 source lists",
    "List exact https origins; never `*`, `https:`, `https://*` or http origins.")
WIDGET_FRAMES = Check(
    "SC603", "Widgets do not embed frames", "low",
    f"{APPS_SDK} (frame domains get extra review; apps with frames may be refused)",
    "Remove frame domains unless embedding is the widget's purpose; say why in the submission.")
WIDGET_DOMAIN = Check(
    "SC604", "Each widget has its own domain", "medium",
    f"{APPS_SDK} (widget domain required for submission: _meta.ui.domain / openai/widgetDomain)",
    "Set a dedicated https origin for the widget.")
WIDGET_MIME = Check(
    "SC605", "Widget resources are served with the right MIME type", "medium",
    "MCP Apps (text/html;profile=mcp-app); Apps SDK (text/html+skybridge)",
    "Serve ui:// templates as text/html;profile=mcp-app (or text/html+skybridge for the openai/* form).")
WIDGET_LINT = Check(
    "SC606", "Widget HTML does nothing its CSP or the guide forbids", "medium",
    f"{APPS_SDK}; ringfence lint RF101-RF108",
    "Fix what the widget lint reports (dialogs, clipboard, eval, inline handlers, undeclared origins, secrets).")

# --- transport --------------------------------------------------------------------------------------
DNS_REBINDING = Check(
    "SC701", "A foreign Host header is refused", "high",
    "MCP transports (Streamable HTTP): servers MUST validate Origin / protect against DNS rebinding",
    "Allow only the server's own host names in Host (e.g. TransportSecuritySettings.allowed_hosts).")
FOREIGN_ORIGIN = Check(
    "SC702", "A request from a foreign Origin is refused", "medium",
    "MCP transports (Streamable HTTP): servers MUST validate the Origin header on all incoming connections",
    "Refuse requests whose Origin is not one you serve (403).")
CORS_CREDENTIALS = Check(
    "SC703", "CORS never grants credentials to any origin", "high",
    "Fetch standard (CORS): `*` or a reflected origin with credentials exposes the API to every site",
    "Never combine Access-Control-Allow-Credentials: true with `*` or with a reflected arbitrary Origin.")
SECURITY_HEADERS = Check(
    "SC704", "HTML pages carry security headers", "medium",
    "OWASP secure headers: CSP frame-ancestors (clickjacking), X-Content-Type-Options: nosniff",
    "Send Content-Security-Policy (with frame-ancestors) and X-Content-Type-Options: nosniff on HTML pages.")
HTTPS_ONLY = Check(
    "SC705", "The server is reached over HTTPS", "high",
    f"{MCP_AUTH} §Communication security; OAuth 2.1 §1.5 (tokens only over TLS)",
    "Serve the MCP endpoint over https; plain http is acceptable on loopback only.")
HSTS = Check(
    "SC706", "HTTPS responses carry Strict-Transport-Security", "medium",
    "RFC 6797 §7.1",
    "Send Strict-Transport-Security: max-age=31536000 on every https response.")

# --- active -----------------------------------------------------------------------------------------
RATE_LIMIT = Check(
    "SC801", "A burst of requests is rate-limited with Retry-After", "medium",
    "MCP tools: servers MUST rate limit tool invocations; RFC 6585 §4 (429 with Retry-After)",
    "Limit requests per client and per token; answer 429 with a Retry-After header.")
BAD_INPUT = Check(
    "SC802", "Malformed, huge and deeply nested bodies get a 4xx, never a 5xx", "high",
    "MCP tools: servers MUST validate all inputs; JSON-RPC 2.0 §5.1 (-32700 parse error)",
    "Cap the body size (413), bound JSON nesting, and answer parse errors with 400 / -32700.")

ISS_IN_RESPONSE = Check(
    "SC803", "An authorization error response carries the advertised `iss`", "medium",
    "RFC 9207 §2: an AS that advertises authorization_response_iss_parameter_supported MUST include `iss`",
    "Add iss=<issuer> to every redirect from the authorization endpoint, errors included.")

SCAN_CHECKS: tuple[Check, ...] = tuple(value for value in globals().values() if isinstance(value, Check))
