"""Tenant isolation and role rights, generated over every route of the app."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from api import auth
from api.app import API_PREFIX
from api.deps import RIGHTS
from fleet.db import session
from fleet.tables import ApiKey, utcnow
from tests.api.support import build_world

BODIES = {
    "assign": {"assignee_id": 1},
    "resolve": {"finding": "no_fault_found"},
    "approve": {},
    "reject": {"reason": "not now"},
    "outcome": {"accepted": True, "revenue": 100.0},
}
ID_OF = {"customer_id": "customers", "machine_id": "machines", "alert_id": "alerts", "offer_id": "offers"}
# The right each route needs (the routers declare it through their dependencies; this is the contract).
ROUTE_RIGHT = {
    ("GET", "/customers/{customer_id}"): "fleet:read",
    ("PUT", "/customers/{customer_id}/grants/{purpose}"): "admin",
    ("DELETE", "/customers/{customer_id}/grants/{purpose}"): "admin",
    ("PUT", "/catalog/customers/{customer_id}"): "admin",
    ("GET", "/machines/{machine_id}"): "fleet:read",
    ("GET", "/machines/{machine_id}/telemetry"): "telemetry:read",
    ("GET", "/machines/{machine_id}/predictions"): "fleet:read",
    ("GET", "/alerts/{alert_id}"): "alerts:read",
    ("POST", "/alerts/{alert_id}/ack"): "alerts:write",
    ("POST", "/alerts/{alert_id}/assign"): "alerts:write",
    ("POST", "/alerts/{alert_id}/resolve"): "alerts:write",
    ("GET", "/offers/{offer_id}"): "offers:read",
    ("POST", "/offers/{offer_id}/approve"): "offers:write",
    ("POST", "/offers/{offer_id}/reject"): "offers:write",
    ("POST", "/offers/{offer_id}/outcome"): "offers:write",
}
LISTS = {
    "/customers": "fleet:read",
    "/machines": "fleet:read",
    "/alerts": "alerts:read",
    "/offers": "offers:read",
    "/audit": "admin",
}
ROLE_OF = {"admin": "admin", "tech": "field_service", "am-acme": "account_manager", "cust-acme": "customer"}


@pytest.fixture
def world(database_url):
    return build_world(database_url)


def object_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every API operation in the OpenAPI schema that takes an object id."""
    out = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith(API_PREFIX) and re.search(r"\{(customer|machine|alert|offer)_id\}", path):
            out += [(method.upper(), path.removeprefix(API_PREFIX)) for method in operations]
    return sorted(out)


def fill(path: str, world, tenant: str) -> str:
    """The path with ids of `tenant`'s objects."""
    for param, kind in ID_OF.items():
        ids = world.customers[tenant] if kind == "customers" else getattr(world, kind)[tenant][0]
        path = path.replace("{" + param + "}", str(ids))
    return API_PREFIX + path.replace("{purpose}", "offers")


def test_every_object_route_is_in_the_contract(world):
    with world.client() as client:
        assert set(object_routes(client.app)) == set(ROUTE_RIGHT)


def test_other_tenant_objects_answer_404_and_lists_hold_no_foreign_rows(world):
    with world.client() as client:
        calls = 0
        for who in ("cust-acme", "am-acme"):
            role = ROLE_OF[who]
            for (method, path), right in ROUTE_RIGHT.items():
                response = client.request(
                    method,
                    fill(path, world, "globex"),
                    headers=world.headers(who),
                    json=BODIES.get(path.rsplit("/", 1)[-1]),
                )
                expected = 404 if role in RIGHTS[right] else 403
                assert response.status_code == expected, (who, method, path, response.text)
                assert response.json()["error"] in ("not_found", "forbidden", "customer_not_found")
                calls += 1
            for path, right in LISTS.items():
                response = client.get(API_PREFIX + path, headers=world.headers(who))
                if role not in RIGHTS[right]:
                    assert response.status_code == 403
                    continue
                assert response.status_code == 200
                owners = {row.get("customer_id", row.get("id")) for row in response.json()}
                assert world.customers["globex"] not in owners, (who, path)
        assert calls == 2 * len(ROUTE_RIGHT)


def test_roles_get_403_exactly_where_they_lack_the_right(world):
    with world.client() as client:
        for who, role in ROLE_OF.items():
            for (method, path), right in ROUTE_RIGHT.items():
                if method != "GET" and role in RIGHTS[right]:
                    continue  # writes that are allowed change state; the workflow tests cover them
                response = client.request(
                    method,
                    fill(path, world, "acme"),
                    headers=world.headers(who),
                    json=BODIES.get(path.rsplit("/", 1)[-1]),
                )
                if role == "customer" and right == "offers:read":
                    # The only acme offer is still a draft, which a customer must not see at all.
                    assert response.status_code == 404, (who, method, path, response.text)
                elif role in RIGHTS[right]:
                    assert response.status_code == 200, (who, method, path, response.text)
                else:
                    assert response.status_code == 403, (who, method, path, response.text)
                    assert response.json() == {
                        "error": "forbidden",
                        "detail": f"the {role} role may not use {right}",
                    }


def test_missing_garbage_expired_and_revoked_keys_get_401(world, monkeypatch):
    clock = [0.0]  # the principal cache's clock, moved by hand
    monkeypatch.setattr(auth.principals, "clock", lambda: clock[0])
    with world.client() as client:
        url = f"{API_PREFIX}/alerts"

        def status(who: str) -> int:
            return client.get(url, headers=world.headers(who)).status_code

        assert client.get(url).status_code == 401
        for token in ("garbage", "sc_deadbeef_nope", world.tokens["tech"][:-2] + "xx", "Bearer sc__"):
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, token
            assert response.json()["error"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        # Revoked in this process (CLI, console): 401 on the next request, cached or not.
        assert status("am-acme") == 200
        assert auth.revoke_keys(engine=world.engine, name="am-acme") == 1
        assert status("am-acme") == 401
        # A key that expires while cached stops at its expiry; the cache checks it on every hit.
        with session(world.engine) as sess:
            sess.execute(
                update(ApiKey)
                .where(ApiKey.prefix == _prefix(world, "cust-acme"))
                .values(expires_at=utcnow() + timedelta(seconds=1))
            )
        assert status("cust-acme") == 200
        time.sleep(1.1)
        assert status("cust-acme") == 401
        # Expired or revoked by another process: served from the cache for at most CACHE_SECONDS.
        for change in ({"expires_at": utcnow() - timedelta(seconds=1)}, {"revoked_at": utcnow()}):
            with session(world.engine) as sess:
                sess.execute(update(ApiKey).values(expires_at=None, revoked_at=None))
            clock[0] += auth.CACHE_SECONDS
            assert status("tech") == 200
            with session(world.engine) as sess:
                sess.execute(update(ApiKey).where(ApiKey.prefix == _prefix(world, "tech")).values(**change))
            clock[0] += auth.CACHE_SECONDS - 0.1
            assert status("tech") == 200, change
            clock[0] += 0.1
            assert status("tech") == 401, change


def _prefix(world, who: str) -> str:
    return world.tokens[who].split("_")[1]


def test_the_principal_cache_is_bounded_and_forgets_users(world):
    cache = auth.PrincipalCache(size=2)
    admin = cache.authenticate(world.engine, world.tokens["admin"])
    assert admin is not None and cache.get(world.tokens["admin"]) == admin
    assert cache.authenticate(world.engine, "sc_deadbeef_nope") is None
    assert cache.get("sc_deadbeef_nope") is None  # failures are not cached
    cache.authenticate(world.engine, world.tokens["tech"])
    cache.forget_user(admin.user_id)
    assert cache.get(world.tokens["admin"]) is None and cache.get(world.tokens["tech"]) is not None
    cache.authenticate(world.engine, world.tokens["admin"])
    cache.authenticate(world.engine, world.tokens["am-acme"])  # a third key: the cache starts over
    assert cache.get(world.tokens["am-acme"]) is not None and cache.get(world.tokens["tech"]) is None


def test_errors_have_one_shape(world):
    with world.client() as client:
        bad = client.get(f"{API_PREFIX}/alerts?limit=0", headers=world.headers("admin"))
        assert bad.status_code == 422 and set(bad.json()) == {"error", "detail"}
        missing = client.get(f"{API_PREFIX}/alerts/999999", headers=world.headers("admin"))
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        nowhere = client.get(f"{API_PREFIX}/nowhere", headers=world.headers("admin"))
        assert nowhere.status_code == 404 and set(nowhere.json()) == {"error", "detail"}


def test_account_managers_see_no_risk_of_customers_without_offers_consent(world):
    globex = world.customers["globex"]
    machine = world.machines["globex"][0]
    alert = world.alerts["globex"][0]
    with world.client() as client:

        def get(who: str, path: str):
            response = client.get(API_PREFIX + path, headers=world.headers(who))
            return response.status_code, response.json()

        assert get("am-globex", f"/machines/{machine}")[1]["risk"] == 0.9
        revoked = client.delete(
            f"{API_PREFIX}/customers/{globex}/grants/offers", headers=world.headers("admin")
        )
        assert revoked.status_code == 200
        status, rows = get("am-globex", "/machines")
        assert status == 200 and len(rows) == 3  # the machines themselves stay visible
        assert all(
            r["risk"] is None and r["failure_mode"] is None and r["predicted_at"] is None for r in rows
        )
        status, row = get("am-globex", f"/machines/{machine}")
        assert status == 200 and row["risk"] is None and row["failure_mode"] is None
        assert get("am-globex", f"/machines/{machine}/predictions") == (200, [])
        assert get("am-globex", "/alerts") == (200, [])
        assert get("am-globex", f"/alerts/{alert}")[0] == 404
        # Field service still works the alert, and the other account's manager still sees his risk.
        assert get("tech", f"/machines/{machine}")[1]["risk"] == 0.9
        assert get("tech", f"/alerts/{alert}")[0] == 200
        assert get("am-acme", f"/machines/{world.machines['acme'][0]}")[1]["risk"] == 0.9
        assert len(get("am-acme", "/alerts")[1]) >= 1
