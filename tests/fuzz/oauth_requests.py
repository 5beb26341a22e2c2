"""Requests to the authorization server's endpoints: /authorize, /token, /register, /revoke, /introspect.

Parameters are drawn by name (RFC 6749, 7009, 7591, 7636, 7662, 8707), each from values that are
right for this server (the real clients, redirect URI, resource, the spare grant's code and tokens),
plausible, or odd; then some are repeated, unknown ones added, and the body sometimes damaged.
Secrets are real or made up (:data:`~tests.fuzz.json_values.SECRET_TEXT`), never the owner's
tokens, which the /mcp fuzzers need alive.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

from tests.fuzz.json_values import MOSTLY_INTACT, SECRET_TEXT, TEXT, VALUES, bodies, weighted
from tests.fuzz.mcp_requests import broken_tokens
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import Headers, Request
from tests.support.oauth import LOOPBACK_REDIRECT, pkce_pair

FORM = ("content-type", "application/x-www-form-urlencoded")
Pairs = list[tuple[str, str]]  # form parameters in order; names may repeat
# Client ids that are URLs make the server fetch a metadata document: only addresses it must refuse
# before connecting (loopback, private, link-local), so no fuzzed request waits on the network.
CIMD_CLIENT_IDS = ["https://127.0.0.1/client.json", "https://10.0.0.1/c", "https://[::1]/c", "https://169.254.169.254/x",
                   "https://[::ffff:127.0.0.1]/c", "http://127.0.0.1:1/c", "https://localhost/c", "https://0.0.0.0/c"]
REDIRECTS = [LOOPBACK_REDIRECT, LOOPBACK_REDIRECT + "/../x", "http://127.0.0.1:3031/callback",
             "http://localhost:3030/callback", "https://chatgpt.com/connector_platform_oauth_redirect",
             "https://chatgpt.com/connector/oauth/abc", "https://evil.example/cb", "javascript:alert(1)",
             "http://127.0.0.1:3030/callback?x=1", "http://127.0.0.1:3030/callback#frag", "", "//evil.example"]
SCOPES = ["contacts:read", "contacts:write", "contacts:read contacts:write", "offline_access", "openid", "admin", "",
          "contacts:read  contacts:write", "CONTACTS:READ"]
GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials", "password", "implicit", "",
               "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic", "private_key_jwt", "client_secret_jwt", ""]


def one_of_values(*choices: Any) -> st.SearchStrategy[Any]:
    """Each choice a value (or a strategy), with odd text as the last alternative."""
    return st.one_of(*[c if isinstance(c, st.SearchStrategy) else st.just(c) for c in choices], TEXT)


class OAuthStrategies:
    """Parameter strategies by name for one server, and request strategies per endpoint, built once."""

    def __init__(self, target: FuzzTarget) -> None:
        spare = target.spare
        verifier, challenge = pkce_pair()
        ids = [target.caller_client_id, spare.client.client_id]
        secret = st.one_of(st.just(spare.client_secret), SECRET_TEXT)
        token = st.one_of(st.sampled_from([spare.access_token, spare.refresh_token]), SECRET_TEXT,
                          st.sampled_from(broken_tokens(spare.access_token)))
        self.values: dict[str, st.SearchStrategy[Any]] = {
            "response_type": one_of_values("code", "code", "token", "code id_token", "none", ""),
            "client_id": one_of_values(*ids, *ids, st.sampled_from(CIMD_CLIENT_IDS), "unknown-client"),
            "redirect_uri": one_of_values(LOOPBACK_REDIRECT, LOOPBACK_REDIRECT, st.sampled_from(REDIRECTS)),
            "scope": one_of_values(st.sampled_from(SCOPES)),
            "state": one_of_values("s", st.text(st.characters(codec="ascii"), max_size=60)),
            "code_challenge": one_of_values(challenge, challenge, "short", "A" * 43, "=" * 43),
            "code_challenge_method": one_of_values("S256", "S256", "plain", "s256", ""),
            "resource": one_of_values(target.server.mcp_url, target.server.mcp_url, target.base_url,
                                      "https://evil.example/mcp", target.server.mcp_url + "/"),
            "grant_type": one_of_values(st.sampled_from(GRANT_TYPES)),
            "code": st.one_of(st.just(spare.code), SECRET_TEXT),
            "code_verifier": st.one_of(st.just(spare.code_verifier), st.just(verifier), SECRET_TEXT),
            "refresh_token": st.one_of(st.just(spare.refresh_token), SECRET_TEXT),
            "client_secret": secret,
            "token": token,
            "token_type_hint": one_of_values("access_token", "refresh_token", "id_token", ""),
            "password": SECRET_TEXT,
            "username": one_of_values("owner", "page-fuzzer"),
            "prompt": one_of_values("consent", "none", "login"),
            "nonce": TEXT,
            "response_mode": one_of_values("query", "fragment", "form_post"),
            "request_uri": one_of_values("urn:ietf:params:oauth:request_uri:x", "https://127.0.0.1/r"),
            "client_assertion_type": one_of_values("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            "client_assertion": one_of_values("a.b.c"),
        }
        basic = st.tuples(one_of_values(*ids), secret).map(basic_header)
        self.client_authentication = weighted((2, st.just([])), (1, basic))
        self.cookie = st.sampled_from([[], [], [("cookie", target.pages.cookie_header())]])
        self.authorize = self._authorize()
        self.token = self._posted("/token", st.one_of(
            self.parameters(("grant_type", "code", "code_verifier", "redirect_uri", "client_id", "resource"),
                            ("client_secret", "scope", "state"), grant_type=mostly("authorization_code")),
            self.parameters(("grant_type", "refresh_token", "client_id", "resource"), ("client_secret", "scope"),
                            grant_type=mostly("refresh_token")),
            self.parameters(("grant_type", "client_id"), ("client_secret", "username", "password", "scope",
                                                          "client_assertion_type", "client_assertion")),
        ))
        self.revoke = self._posted("/revoke", self.parameters(("token", "client_id"),
                                                              ("token_type_hint", "client_secret")))
        self.introspect = self._posted("/introspect", self.parameters(("token", "client_id", "client_secret"),
                                                                      ("token_type_hint",)))

    def _authorize(self) -> st.SearchStrategy[Request]:
        """GET /authorize, signed out or as the second person (then the consent page or a code)."""
        pairs = self.parameters(("response_type", "client_id", "redirect_uri", "state", "code_challenge",
                                 "code_challenge_method", "resource"),
                                ("scope", "prompt", "nonce", "response_mode", "request_uri"))
        return st.tuples(pairs, self.cookie).map(lambda t: Request("GET", "/authorize?" + form(t[0]), t[1]))

    def _posted(self, path: str, pairs: st.SearchStrategy[Pairs]) -> st.SearchStrategy[Request]:
        return self.form_body(pairs).map(lambda body: Request("POST", path, body[0], body[1]))

    def parameters(self, usual: tuple[str, ...], others: tuple[str, ...] = (),
                   **values: st.SearchStrategy[Any]) -> st.SearchStrategy[Pairs]:
        """Pairs: the ``usual`` names mostly present, ``others`` now and then; then repeated, unknown
        names added, or shuffled. ``values`` replace the strategies of some names."""
        values = {**self.values, **values}
        present = st.fixed_dictionaries({}, optional={name: values[name] for name in (*usual, *usual, *others)
                                                      if name in values})
        required = st.fixed_dictionaries({name: values[name] for name in usual})
        mostly_required = weighted((2, required), (1, present))

        @st.composite
        def build(draw: st.DrawFn) -> Pairs:
            chosen = draw(mostly_required)
            pairs = [(name, value if isinstance(value, str) else str(value)) for name, value in chosen.items()]
            change = draw(st.sampled_from(["none"] * 6 + ["repeat", "unknown", "shuffle", "empty"]))
            if change == "repeat" and pairs:
                name = draw(st.sampled_from([name for name, _ in pairs]))
                pairs.append((name, draw(TEXT)))
            elif change == "unknown":
                pairs += draw(st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3))
            elif change == "shuffle":
                pairs = draw(st.permutations(pairs))
            elif change == "empty":
                pairs = [(name, "") for name, _ in pairs]
            return pairs

        return build()

    def form_body(self, pairs: st.SearchStrategy[Pairs]) -> st.SearchStrategy[tuple[Headers, bytes]]:
        """A form body (sometimes damaged, or JSON instead), with client authentication or not."""
        @st.composite
        def build(draw: st.DrawFn) -> tuple[Headers, bytes]:
            content = draw(MOSTLY_INTACT)(form(draw(pairs)).encode())
            content_type = draw(st.sampled_from([[FORM]] * 6 + [[], [("content-type", "application/json")],
                                                             [("content-type", "multipart/form-data")],
                                                             [FORM, FORM]]))
            auth = draw(self.client_authentication)
            return [*content_type, *auth], content

        return build()


def mostly(grant_type: str) -> st.SearchStrategy[str]:
    """The grant type a request's other parameters are for, four times in five; else any."""
    return weighted((4, st.just(grant_type)), (1, one_of_values(st.sampled_from(GRANT_TYPES))))


def form(pairs: Pairs) -> str:
    """``application/x-www-form-urlencoded``; a lone surrogate goes as its UTF-8-like percent escapes."""
    return urlencode([(quote(name, safe="", errors="surrogatepass"), quote(value, safe="", errors="surrogatepass"))
                      for name, value in pairs], safe="%")


def basic_header(pair: tuple[str, str]) -> Headers:
    """RFC 6749 §2.3.1 HTTP Basic with the client id and secret (odd ones too)."""
    raw = f"{quote(pair[0], safe='', errors='surrogatepass')}:{quote(pair[1], safe='', errors='surrogatepass')}"
    return [("authorization", "Basic " + base64.b64encode(raw.encode()).decode())]


# Registration metadata (RFC 7591 §2) -------------------------------------------------------------------


def registration_metadata() -> st.SearchStrategy[Any]:
    """Client metadata, mostly well-formed, with odd values in any field, and anything at all."""
    uri = one_of_values(st.sampled_from(REDIRECTS))
    fields = {
        "redirect_uris": st.one_of(st.lists(uri, min_size=1, max_size=3), st.lists(uri, max_size=3), VALUES),
        "client_name": st.one_of(TEXT, st.sampled_from(["\u202eelgooG\u202c", "Goo\u200bgle", "a\ud800b", "x" * 5000]),
                                 VALUES),
        "token_endpoint_auth_method": one_of_values(st.sampled_from(AUTH_METHODS)),
        "grant_types": st.one_of(st.lists(st.sampled_from(GRANT_TYPES), max_size=3), VALUES),
        "response_types": st.one_of(st.lists(st.sampled_from(["code", "token", "id_token", ""]), max_size=2), VALUES),
        "scope": one_of_values(st.sampled_from(SCOPES)),
        "client_uri": uri, "logo_uri": uri, "tos_uri": uri, "policy_uri": uri, "jwks_uri": uri,
        "contacts": st.one_of(st.lists(TEXT, max_size=2), VALUES),
        "jwks": VALUES, "software_id": TEXT, "software_version": TEXT, "software_statement": TEXT,
        "client_id": TEXT, "client_secret": SECRET_TEXT, "client_id_issued_at": VALUES,
    }
    registrable = st.fixed_dictionaries({"redirect_uris": st.just([LOOPBACK_REDIRECT])},
                                        optional={name: value for name, value in fields.items()
                                                  if name != "redirect_uris"})
    well_formed = st.one_of(registrable, st.fixed_dictionaries({}, optional=fields))
    extended = st.tuples(well_formed, st.dictionaries(TEXT, VALUES, max_size=3)).map(lambda t: {**t[0], **t[1]})
    return weighted((3, well_formed), (1, extended), (1, VALUES))


REGISTRATION_BODIES = bodies(registration_metadata())
_JSON_TYPES = st.sampled_from([[("content-type", "application/json")]] * 6 +
                              [[], [FORM], [("content-type", "application/json; charset=latin-1")],
                               [("content-type", "text/plain")]])


def registrations() -> st.SearchStrategy[Request]:
    return st.tuples(_JSON_TYPES, REGISTRATION_BODIES).map(lambda t: Request("POST", "/register", t[0], t[1]))

