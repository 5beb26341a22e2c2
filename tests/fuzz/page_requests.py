"""Requests to the pages a person sees: home, sign-in, consent, account, export, deletion, confirmation.

Each request carries the second person's browser session, none, or a made-up one, and a form
with their real CSRF token, a wrong one or none. Two things are never sent together, so the
session lives through the run: their password with a deletion, and their CSRF token with a sign-out.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from hypothesis import strategies as st

from tests.fuzz.json_values import MOSTLY_INTACT, SECRET_TEXT, TEXT, weighted
from tests.fuzz.oauth_requests import FORM, OAuthStrategies, Pairs, form
from tests.fuzz.target import FuzzTarget
from tests.fuzz.wire import Headers, Request

NEXT = ["/account", "/authorize?x=1", "/confirm/x", "//evil.example", "https://evil.example", "/account/../x",
        "javascript:alert(1)", ""]


def quoted(text: str) -> str:
    return quote(text, safe="", errors="surrogatepass")


class PageStrategies:
    """Page requests for one server, built once."""

    def __init__(self, target: FuzzTarget, oauth: OAuthStrategies) -> None:
        person = target.pages
        signed_in = [("cookie", person.cookie_header())]
        self.cookie: st.SearchStrategy[Headers] = weighted(
            (3, st.just(signed_in)), (1, st.just([])),
            (1, SECRET_TEXT.map(lambda value: [("cookie", f"{person.cookie_name}={value}")])),
            (1, st.sampled_from([[("cookie", f"__Host-ringfence={person.cookie}")],
                                 [("cookie", f"{person.cookie_name}={person.cookie}; {person.cookie_name}=x")],
                                 [("cookie", f"{person.cookie_name}=")], [("cookie", "=;;=")]])),
        )
        wrong_csrf = st.one_of(st.just(None), TEXT, st.just(person.csrf[:-1]))
        csrf = weighted((2, st.just(person.csrf)), (1, wrong_csrf))
        next_url = st.one_of(st.sampled_from(NEXT), TEXT)
        confirm = f"/confirm/{person.confirm_page}"
        client_ids = st.one_of(st.just(target.spare.client.client_id), TEXT)
        forms = {
            "/login": st.fixed_dictionaries({"csrf": csrf}, optional={
                "next": next_url, "username": st.one_of(st.sampled_from(["page-fuzzer", "owner"]), TEXT),
                "password": SECRET_TEXT}),
            "/logout": st.fixed_dictionaries({"csrf": wrong_csrf}),
            "/account/revoke": st.fixed_dictionaries({"csrf": csrf}, optional={"client_id": client_ids}),
            "/account/export": st.fixed_dictionaries({"csrf": csrf}),
            "/account/delete": st.fixed_dictionaries({"csrf": csrf}, optional={"password": SECRET_TEXT}),
            confirm: st.fixed_dictionaries({"csrf": csrf}, optional={
                "decision": st.one_of(st.sampled_from(["confirm", "decline"]), TEXT)}),
        }
        consent = st.tuples(
            oauth.parameters(("response_type", "client_id", "redirect_uri", "state", "code_challenge",
                              "code_challenge_method", "resource"), ("scope",)),
            st.fixed_dictionaries({"csrf": csrf}, optional={"decision": st.one_of(st.sampled_from(["allow", "deny"]),
                                                                                   TEXT)}),
        ).map(lambda t: [*t[0], *t[1].items()])
        self.posts = st.one_of(
            *[st.tuples(st.just(path), fields.map(present)) for path, fields in forms.items()],
            st.tuples(st.just("/authorize"), consent.map(present)),
        )
        self.gets = st.one_of(
            st.sampled_from(["/", "/login", "/account", "/account/delete", confirm, "/static/ringfence.css",
                             "/authorize", "/logout", "/account/export", "/account/revoke"]),
            next_url.map(lambda value: "/login?next=" + quoted(value)),
            TEXT.map(lambda value: "/confirm/" + quoted(value)),
            st.tuples(TEXT, TEXT).map(
                lambda t: "/account?" + urlencode({"disconnected": t[0], "sig": t[1]}, errors="surrogatepass")),
        )
        self.requests = self._requests()

    def _requests(self) -> st.SearchStrategy[Request]:
        @st.composite
        def build(draw: st.DrawFn) -> Request:
            cookie = draw(self.cookie)
            if draw(st.integers(0, 2)) == 0:
                return Request("GET", draw(self.gets), cookie)
            path, pairs = draw(self.posts)
            content = draw(MOSTLY_INTACT)(form(pairs).encode())
            content_type = draw(st.sampled_from([[FORM]] * 4 + [[], [("content-type", "multipart/form-data")]]))
            return Request("POST", path, [*cookie, *content_type], content)

        return build()


def present(fields: dict[str, str | None] | Pairs) -> Pairs:
    """Form pairs, leaving out the fields drawn as ``None`` (not sent at all)."""
    items = fields.items() if isinstance(fields, dict) else fields
    return [(name, value) for name, value in items if value is not None]
