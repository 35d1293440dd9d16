"""An admin can revoke the keys of any user from the admin page, whatever characters its name holds."""

from __future__ import annotations

import html
import re

import pytest

from api import auth
from api.app import API_PREFIX
from tests.api.support import World
from tests.console.client import ConsoleClient, flash, sign_in


@pytest.mark.parametrize("name", ["Service/Nord", "Anna Öz #2?"])
def test_the_admin_page_revokes_the_keys_of_a_user_whose_name_holds_a_slash(
    client: ConsoleClient, world: World, name: str
) -> None:
    _, token = auth.create_user(engine=world.engine, name=name, role="field_service")
    with world.client() as api:
        assert api.get(f"{API_PREFIX}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    sign_in(client, world, "admin")
    page = client.get("/admin").text
    theirs = [a for a in re.findall(r'action="(/admin/users/[^"]+)"', page) if a.endswith("/revoke")]
    others = {f"/admin/users/{user}/revoke" for user in world.users}
    [action] = [html.unescape(a) for a in theirs if a not in others]
    confirm = client.post(action)
    assert confirm.status_code == 200 and f"Revoke every API key of {html.escape(name)}?" in confirm.text
    again = html.unescape(re.search(r'<form method="post" action="([^"]+/revoke)"', confirm.text).group(1))
    done = client.post(again, data={"confirmed": "yes"})
    assert done.status_code == 200 and flash(done.text) == f"1 API keys of {html.escape(name)} revoked."
    auth.principals.clear()
    with world.client() as api:
        assert api.get(f"{API_PREFIX}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
