"""A URL as it may be shown to a person or written to a log: who it reaches, never the secret it carries.

An incoming webhook's path or query (Slack's /services/T…/B…/…, Teams, ?token= ?sig= ?code=) is its
credential, as are a password and storage keys in user:password@. Scheme, host and port stay readable, and
so does the path of a URL that is not a web address (a database's name, an archive's bucket and prefix).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
WEB_SCHEMES = frozenset({"http", "https", "ws", "wss"})
# A web path's first segment is kept when more follow and it is a short word: a service's route (services/,
# webhookb2/, api/) that tells hooks apart; a lone segment, or a long one, may be the token itself.
ROUTE = re.compile(r"[A-Za-z0-9_.-]{1,16}")
# Query values shown as they are: connection options an operator checks, never a credential.
SHOWN_QUERY = frozenset({"starttls", "sslmode", "connect_timeout", "application_name"})
SHORTEST_SECRET = 4  # shorter hidden parts are not searched for in a text: they would mask common words
_ENDS_HOST = re.compile(r"[/?#]")


def redact_url(url: str) -> str:
    """`url` with its password, a web path past its route, query values and fragment masked as ***."""
    return _split(url)[0]


def redact_text(text: str, *urls: str | None, cut: bool = False) -> str:
    """`text` (an error, a receiver's answer) with every part of `urls` that `redact_url` hides masked,
    also percent-decoded: clients and receivers quote the URL they were given. `cut`: the text was cut
    short, so a hidden part it ends in the middle of is dropped from its end too."""
    hidden = {piece for url in urls if url for piece in _split(url)[1]}
    hidden |= {unquote(piece) for piece in hidden}
    hidden = {piece for piece in hidden if len(piece) >= SHORTEST_SECRET}
    for piece in sorted(hidden, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text[: len(text) - _cut_piece(text, hidden)] if cut else text


def _cut_piece(text: str, hidden: set[str]) -> int:
    """How many characters at the end of `text` are the start of one of `hidden`."""
    longest = 0
    for piece in hidden:
        longest = max(longest, *(n for n in range(1, len(piece)) if text.endswith(piece[:n])), 0)
    return longest


def _split(url: str) -> tuple[str, list[str]]:
    """The URL as shown, and the parts of it that were hidden."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, []  # a folder, or no URL at all
    web = scheme.lower() in WEB_SCHEMES
    if web:  # RFC 3986, as HTTP clients read it: the authority ends at the first / ? #
        end = _ENDS_HOST.search(rest)
        authority, tail = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
        userinfo, at, host = authority.rpartition("@")
    else:  # SQLAlchemy reads a / ? # in a password as part of it: up to the last @
        userinfo, at, after = rest.rpartition("@")
        if "/" in userinfo.partition(":")[0]:
            userinfo, at, after = "", "", rest  # that @ stands in the path, after no user name
        end = _ENDS_HOST.search(after)
        host, tail = (after[: end.start()], after[end.start() :]) if end else (after, "")
    hidden: list[str] = []
    user, colon, password = userinfo.partition(":")
    if colon:  # and its pieces: a parser that ends the host at a / ? # in it quotes what follows
        hidden.extend([password, *_ENDS_HOST.split(password)])
        userinfo = f"{user}:{MASK}"
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and not port.isdigit():  # a password an unencoded / cut from its @
        hidden.append(port)
        host = f"{name}:{MASK}"
    rest_of, hash_, fragment = tail.partition("#")
    path, question, query = rest_of.partition("?")
    if web:
        path = _web_path(path, hidden)
    if question:
        query = _query(query, hidden)
    if hash_:
        hidden.append(fragment)
        fragment = MASK
    shown = f"{scheme}://{userinfo}{at}{host}{path}{question}{query}{hash_}{fragment}"
    return shown, hidden


def _web_path(path: str, hidden: list[str]) -> str:
    """A web path as shown: `/`, or its route and ***; the parts masked are added to `hidden`."""
    segments = path.lstrip("/").split("/")
    if path in ("", "/"):
        return path
    keep = 1 if len(segments) > 1 and ROUTE.fullmatch(segments[0]) else 0
    masked = segments[keep:]
    hidden.extend(["/".join(masked), *masked])
    return "/" + "/".join([*segments[:keep], MASK])


def _query(query: str, hidden: list[str]) -> str:
    """A query as shown: each value masked unless its name is in SHOWN_QUERY (a bare item: all of it)."""
    out = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if equals and name.lower() in SHOWN_QUERY:
            out.append(item)
        elif equals:
            hidden.append(value)
            out.append(f"{name}={MASK}")
        else:
            hidden.append(item)
            out.append(MASK)
    return "&".join(out)
