"""Erasure's pseudonymising of audit lines and model metrics: names in any script, codes that are numbers."""

from __future__ import annotations

from sqlalchemy import select

from api import auth
from api.app import create_app
from fleet import erasure, registry
from fleet.tables import ApiKey, ModelVersion, WorkflowEvent
from tests.api.support import build_world
from tests.console.client import ConsoleClient, sign_in
from tests.lifecycle import support


def _erase(engine, tenant: str, tmp_path) -> dict:  # noqa: ANN001
    url = str(tmp_path / "archive")
    return erasure.erase(
        engine, tenant=tenant, confirm=tenant, by="cli:dpo", archive_url=url, now=support.START
    )


def test_a_name_with_umlauts_and_quotes_leaves_the_audit_lines(engine, tmp_path) -> None:
    name = 'Pumpen Müller "Süd" GmbH'
    registry.add_customer(engine=engine, tenant="mueller", name=name)
    registry.grant(
        engine=engine, tenant="mueller", purpose="offers", by="cli:am", reference=f"Brief von {name}"
    )

    _erase(engine, "mueller", tmp_path)

    with engine.connect() as conn:
        lines = conn.execute(select(WorkflowEvent.data, WorkflowEvent.before, WorkflowEvent.after)).all()
    assert lines and not [line for line in lines if "Müller" in repr(line)]


def test_a_machine_numbered_7_is_erased_and_other_figures_stay(engine, tmp_path) -> None:
    support.register(engine, "plant-7", ["7"])
    with engine.begin() as conn:
        support.pump_model(conn, {"auc": 0.7})

    receipt = _erase(engine, "plant-7", tmp_path)

    with engine.connect() as conn:
        metrics = conn.scalar(select(ModelVersion.metrics))
    assert receipt["counts"]["machines"] == 1 and metrics == {"auc": 0.7}


def test_another_customers_lines_keep_words_that_only_contain_a_code(engine, tmp_path) -> None:
    support.register(engine, "plant-7", ["7", "p1"])
    support.register(engine, "globex", ["p12"])
    reference = "contract 2017/7b, machines p12 and plant-77"
    registry.grant(engine=engine, tenant="globex", purpose="offers", by="cli:am", reference=reference)

    _erase(engine, "plant-7", tmp_path)

    with engine.connect() as conn:
        references = [data.get("reference") for data in conn.scalars(select(WorkflowEvent.data))]
    assert reference in references


def test_the_customers_key_lines_lose_their_key_ids_and_another_users_keep_theirs(engine, tmp_path) -> None:
    ops, _ = auth.create_user(engine=engine, name="ops", role="admin")
    auth.issue_key(engine=engine, name="ops")  # a second key: key ids and user ids part ways
    registry.add_customer(engine=engine, tenant="acme")
    customer, _ = auth.create_user(engine=engine, name="buyer", role="customer", customer="acme")
    with engine.connect() as conn:
        ops_keys, buyer_keys = (
            list(conn.scalars(select(ApiKey.id).where(ApiKey.user_id == user.id).order_by(ApiKey.id)))
            for user in (ops, customer)
        )
    assert customer.id in ops_keys  # the ops key whose id is the buyer's user id

    _erase(engine, "acme", tmp_path)

    with engine.connect() as conn:
        keys = conn.scalars(select(WorkflowEvent.subject_id).where(WorkflowEvent.subject == "api_key")).all()
    assert sorted(keys, key=lambda k: k or 0) == [None, *ops_keys] and buyer_keys


def test_the_customers_sign_ins_lose_their_network_address(database_url, tmp_path) -> None:
    world = build_world(database_url)
    for who in ("cust-acme", "cust-globex"):
        with ConsoleClient(create_app(world.settings)) as client:
            sign_in(client, world, who)

    _erase(world.engine, "acme", tmp_path)

    with world.engine.connect() as conn:
        sign_ins = conn.execute(
            select(WorkflowEvent.actor, WorkflowEvent.data).where(WorkflowEvent.action == "sign_in")
        ).all()
    assert [data["client"] for actor, data in sign_ins if actor == "cust-globex"] == ["testclient"]
    erased = [data["client"] for actor, data in sign_ins if actor != "cust-globex"]
    assert erased and "testclient" not in erased


def test_another_customers_lines_keep_a_machine_code_both_customers_use(engine, tmp_path) -> None:
    for tenant in ("acme", "globex"):
        support.register(engine, tenant, ["press-01"])
    reference = "clause 4 covers press-01"
    registry.grant(engine=engine, tenant="globex", purpose="offers", by="cli:am", reference=reference)
    registry.grant(engine=engine, tenant="acme", purpose="offers", by="cli:am", reference=reference)

    _erase(engine, "acme", tmp_path)

    with engine.connect() as conn:
        references = [data.get("reference") for data in conn.scalars(select(WorkflowEvent.data))]
    assert references.count(reference) == 1  # globex's; acme's lost its code


def test_a_tenant_named_like_a_word_of_the_trail_leaves_that_word(engine, tmp_path) -> None:
    registry.add_customer(engine=engine, tenant="offers", offers=True)
    registry.add_customer(engine=engine, tenant="system")
    auth.create_user(engine=engine, name="ops", role="field_service")  # by no one: actor "system"

    _erase(engine, "offers", tmp_path)
    _erase(engine, "system", tmp_path)

    with engine.connect() as conn:
        lines = conn.execute(select(WorkflowEvent.action, WorkflowEvent.actor, WorkflowEvent.after)).all()
    added = [after["purposes"] for action, _, after in lines if action == "customer_added"]
    assert ["offers", "service"] in added  # what the erased customer consented to, still legible
    assert [(actor, after["role"]) for action, actor, after in lines if action == "user_created"] == [
        ("system", "field_service")
    ]


def test_a_tenant_named_like_a_role_leaves_the_role_in_other_users_lines(engine, tmp_path) -> None:
    roles = ("admin", "field_service", "account_manager", "customer")
    registry.add_customer(engine=engine, tenant="globex")
    for role in roles:
        registry.add_customer(engine=engine, tenant=role)
        customer = "globex" if role == "customer" else None
        auth.create_user(engine=engine, name=f"user {len(role)}", role=role, customer=customer)

    for role in roles:
        _erase(engine, role, tmp_path)

    with engine.connect() as conn:
        lines = conn.execute(select(WorkflowEvent.action, WorkflowEvent.after)).all()
    created = sorted((after["name"], after["role"]) for action, after in lines if action == "user_created")
    assert created == sorted((f"user {len(role)}", role) for role in roles)


def test_its_peoples_addresses_leave_the_lines_in_any_case(engine, tmp_path) -> None:
    registry.add_customer(engine=engine, tenant="acme")
    # Stored as written; İ lowers to two characters (i and a combining dot above).
    for name, email in (
        ("anna", "anna.smith@x.example"),
        ("aenne", "Änne@oem.example"),
        ("ilk", "i\u0307lk@x.example"),
    ):
        auth.create_user(engine=engine, name=name, role="customer", customer="acme", email=email)
    reference = (
        "mails from Anna.Smith@X.Example, änne@OEM.example, \u0130LK@x.example; not anna.ſmith@x.example"
    )
    registry.grant(engine=engine, tenant="acme", purpose="offers", by="cli:am", reference=reference)

    pseudonym = _erase(engine, "acme", tmp_path)["pseudonym"]

    with engine.connect() as conn:
        references = [data.get("reference") for data in conn.scalars(select(WorkflowEvent.data))]
    p = pseudonym  # ſ is no s to lower(): not anna's address, yet user anna's name
    assert f"mails from {p}, {p}, {p}; not {p}.ſmith@x.example" in references
