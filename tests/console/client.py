"""A console test client that signs in and posts forms with the session's CSRF token, and page readers."""

from __future__ import annotations

import html as html_text
import re

from fastapi.testclient import TestClient

from tests.api.support import World


class ConsoleClient(TestClient):
    """A browser stand-in: every form it posts carries the CSRF token of the session it signed in to."""

    csrf_token = ""

    def post(self, url: str, *, data: dict | None = None, **kwargs):  # noqa: ANN201
        return super().post(url, data={"csrf_token": self.csrf_token, **(data or {})}, **kwargs)


def sign_in(client: ConsoleClient, world: World, who: str) -> None:
    """Sign in; the client then sends the session's CSRF token with every form it posts."""
    client.cookies.clear()
    response = client.post("/login", data={"api_key": world.tokens[who]})
    assert response.status_code == 200
    client.csrf_token = re.search(r'name="csrf_token" value="([^"]+)"', response.text).group(1)


def flash(html: str) -> str:
    """The page's flash message, or '' when it has none."""
    found = re.search(r'<p class="flash (?:ok|error)"[^>]*>(.*?)</p>', html, re.S)
    return found.group(1).strip() if found else ""


def heading(html: str) -> str:
    """The page's h1 as text."""
    return re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)).strip()


def visible(html: str) -> str:
    """The text a reader sees: no tags or attributes, entities read, spaces collapsed."""
    return re.sub(r"\s+", " ", html_text.unescape(re.sub(r"<[^>]+>", " ", html)))
