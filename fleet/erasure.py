"""Erasure of a customer: every row and archive file, audit lines pseudonymised, a receipt of counts.

Deleting the customer's row cascades (every customer-owned table's foreign key says ON DELETE CASCADE):
machines and through them telemetry, rollups, events, labels, credentials; predictions, alerts, offers,
outbox payloads, grants, users with their keys and sessions. Rows that only name the tenant (quarantined
messages, Sparkplug node state, its edge nodes' broker credentials) are deleted by name. Audit lines stay,
a legal record, with the customer's ids, codes and user names replaced by the receipt's pseudonym (in the
lines about the customer also its name, serials, sites and its people's sign-in addresses); model versions
of its machines' types are marked as needing retraining and lose the tenant's codes from their metrics.
A customer whose offer events were queued for the CRM leaves a notice with the receipt per destination they
were queued for (`erasure_notices`): the CRM is told of the erasure by its ids there.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import Connection, Engine, delete, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from fleet import (
    archive_location,
    archive_lock,
    archive_store,
    audit,
    audit_maintenance,
    display,
    erasure_ledger,
    erasure_names,
    erasure_notices,
    errors,
)
from fleet.db import for_writing
from fleet.tables import (
    Alert,
    ApiKey,
    ArchiveFile,
    Base,
    Customer,
    ErasureReceipt,
    Machine,
    ModelVersion,
    Offer,
    Site,
    User,
    WorkflowEvent,
    subscription_address,
)
from fleet.tables.register import PURPOSES
from fleet.tables.workflow import ROLES

# fleet.archive_legacy (pyarrow) is imported where an erasure meets a customer: a process's start check reads
# `unfinished` here, and a refusal, or the erasure of a tenant id no customer has, must not pay for it.
log = logging.getLogger(__name__)
_ID_KEYS = {"customer_id": "customers", "machine_id": "machines", "user_id": "users"}
# Subjects of audit lines that belong to one customer: its record, machines, alerts and offers.
_CUSTOMERS_OBJECTS = frozenset({"customer", "machine", "alert", "offer"})
# The trail's own words: a tenant called "offers", "system" or "admin" cannot be told from them, and the
# consent it gave (what the system did, the roles people were given) must stay legible.
_TRAIL_WORDS = frozenset({display.SYSTEM_ACTOR, *PURPOSES, *ROLES})
# Values that say where its people were: a console sign-in's network address.
_ADDRESS_KEYS = frozenset({"client"})


class NotConfirmed(ValueError):
    """The confirmation does not repeat the tenant id."""


@dataclass(frozen=True)
class Erased:
    """Ids, codes and names of one customer, gathered before its rows go (and never changed after: its
    scrubs are built once, on first use)."""

    customer_id: int
    tenant: str
    machine_ids: set[int]
    machine_codes: set[str]
    machine_types: set[str]
    user_ids: set[int]
    key_ids: set[int]
    user_names: set[str]
    addresses: set[str]  # its people's e-mail addresses, lowered (`subscription_address`): match in any case
    alert_ids: set[int]
    offer_ids: set[int]
    pseudonym: str
    # Its company name, machine serials, site names and addresses: what people write about it (a consent's
    # reference, an edited offer, a lost deal's reason). Scrubbed from the lines about the customer only: a
    # site called "Hall 2" is no trace of it in another customer's lines.
    described_by: set[str]

    def scrub_text(self, text: str, *, about: bool = False) -> str:
        """The text with every code and name of the customer replaced by the pseudonym; `about`: a text
        about the customer, which loses its descriptions too."""
        return self._scrubs[about](text)

    @cached_property
    def _scrubs(self) -> dict[bool, _Scrub]:
        """Per `about`: the scrub of its texts."""
        words = {self.tenant, *self.machine_codes, *self.user_names}
        return {
            about: _Scrub(frozenset(named - _TRAIL_WORDS - {""}), frozenset(self.addresses), self.pseudonym)
            for about, named in ((False, words), (True, words | self.described_by))
        }

    def scrub(self, value: object, *, about: bool = False) -> object:
        """A JSON value with codes and names in its texts and keys, and the customer's ids under id keys,
        replaced. Texts one by one, not the JSON text: that escapes quotes and non-ASCII letters, and holds
        numbers a code of digits would match."""
        ids = {"customers": {self.customer_id}, "machines": self.machine_ids, "users": self.user_ids}
        if isinstance(value, dict):
            return {
                self.scrub_text(k, about=about): self.pseudonym
                if (k in _ID_KEYS and v in ids[_ID_KEYS[k]]) or (about and k in _ADDRESS_KEYS)
                else self.scrub(v, about=about)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.scrub(v, about=about) for v in value]
        return self.scrub_text(value, about=about) if isinstance(value, str) else value


@dataclass(frozen=True)
class _Scrub:
    """Replaces each of these words, and each text that lowers to one of the lowered addresses, by the
    pseudonym; its pattern compiled once."""

    words: frozenset[str]
    addresses: frozenset[str]
    pseudonym: str

    def __call__(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(self._replaced, text)

    @cached_property
    def _pattern(self) -> re.Pattern | None:
        patterns = [(w, re.escape(w)) for w in self.words] + [(a, _any_case(a)) for a in self.addresses]
        if not patterns:
            return None
        # Whole words only: machine 7 is not in "2017", tenant plant-7 not in "plant-77" (another's lines).
        alternatives = "|".join(p for _, p in sorted(patterns, key=lambda wp: len(wp[0]), reverse=True))
        return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")

    @cached_property
    def _words_only(self) -> _Scrub:
        return _Scrub(self.words, frozenset(), self.pseudonym)

    def _replaced(self, match: re.Match) -> str:
        found = match.group()
        if found in self.words or subscription_address("email", found) in self.addresses:
            return self.pseudonym
        # re folds case wider than lower() (ſ is an s to it): no address, yet it may hold a word.
        return self._words_only(found)


def _any_case(lowered: str) -> str:
    """A pattern of the texts that may lower() to this lowered address: İ, the one character lowered to two
    (i and a combining dot above), included."""
    return "(?i:" + re.escape(lowered).replace("i\u0307", "(?:i\u0307|\u0130)") + ")"


def _gather(conn: Connection, tenant: str) -> Erased | None:
    customer = conn.execute(select(Customer.id, Customer.name).where(Customer.tenant == tenant)).first()
    if customer is None:
        return None
    customer_id = customer.id
    machines = conn.execute(
        select(Machine.id, Machine.code, Machine.machine_type, Machine.serial).where(
            Machine.customer_id == customer_id
        )
    ).all()
    sites = conn.execute(select(Site.name, Site.location).where(Site.customer_id == customer_id)).all()
    described = {customer.name, *(m.serial for m in machines), *(w for site in sites for w in site)}
    users = conn.execute(select(User.id, User.name, User.email).where(User.customer_id == customer_id)).all()
    return Erased(
        customer_id=customer_id,
        tenant=tenant,
        machine_ids={m.id for m in machines},
        machine_codes={m.code for m in machines},
        machine_types={m.machine_type for m in machines},
        user_ids={u.id for u in users},
        key_ids=set(conn.scalars(select(ApiKey.id).where(ApiKey.user_id.in_([u.id for u in users] or [-1])))),
        user_names={u.name for u in users},
        addresses={subscription_address("email", u.email) for u in users if u.email},
        alert_ids=set(conn.scalars(select(Alert.id).where(Alert.customer_id == customer_id))),
        offer_ids=set(conn.scalars(select(Offer.id).where(Offer.customer_id == customer_id))),
        pseudonym=_pseudonym(),
        described_by=described - {None},
    )


def _counts(conn: Connection, who: Erased) -> dict[str, int]:
    """Rows per table that belong to the customer (by customer or machine id), before the cascade."""
    counts: dict[str, int] = {}
    for table in Base.metadata.sorted_tables:
        c = table.c
        if "customer_id" in c and table.name not in ("erasure_receipts",):
            where = c.customer_id == who.customer_id
        elif "machine_id" in c and who.machine_ids:
            where = c.machine_id.in_(list(who.machine_ids))
        elif "user_id" in c and who.user_ids:
            where = c.user_id.in_(list(who.user_ids))
        elif table.name == "customers":
            where = c.id == who.customer_id
        else:
            continue
        n = conn.scalar(select(func.count()).select_from(table).where(where)) or 0
        if n:
            counts[table.name] = n
    return counts


def _pseudonymise_audit(conn: Connection, who: Erased) -> int:
    w = WorkflowEvent.__table__.c
    by_subject = [
        (w.subject == "customer") & (w.subject_id == who.customer_id),
        w.subject.in_(["machine"]) & w.subject_id.in_(list(who.machine_ids) or [-1]),
        (w.subject == "user") & w.subject_id.in_(list(who.user_ids) or [-1]),
        (w.subject == "api_key") & w.subject_id.in_(list(who.key_ids) or [-1]),
        (w.subject == "alert") & w.subject_id.in_(list(who.alert_ids) or [-1]),
        (w.subject == "offer") & w.subject_id.in_(list(who.offer_ids) or [-1]),
        w.actor_id.in_(list(who.user_ids) or [-1]),
    ]
    changed = 0
    rows = conn.execute(select(w.id, w.subject, w.subject_id, w.actor, w.data, w.before, w.after)).all()
    mentions = conn.execute(select(w.id).where(or_(*by_subject))).scalars().all()
    named = set(mentions)
    with audit_maintenance.allowed(conn, "erasure"):
        for row in rows:
            about = row.id in named
            if not about and row.subject in _CUSTOMERS_OBJECTS and row.subject_id is not None:
                continue  # another customer's line: a machine code both use is its own word there
            was = {"actor": row.actor, "data": row.data or {}, "before": row.before, "after": row.after}
            values = {column: who.scrub(value, about=about) for column, value in was.items()}
            if about:
                values.update(subject_id=None, actor_id=None)
            elif values == was:
                continue
            conn.execute(update(WorkflowEvent).where(w.id == row.id).values(**values))
            changed += 1
    return changed


def _mark_models(conn: Connection, who: Erased) -> int:
    marked = 0
    versions = conn.execute(
        select(ModelVersion.id, ModelVersion.metrics, ModelVersion.params, ModelVersion.comparison).where(
            ModelVersion.machine_type.in_(list(who.machine_types) or [""])
        )
    ).all()
    for vid, metrics, params, comparison in versions:
        conn.execute(
            update(ModelVersion)
            .where(ModelVersion.id == vid)
            .values(
                metrics=who.scrub(metrics) or {},
                params=who.scrub(params) or {},
                comparison=who.scrub(comparison),
                retrain_reason=f"trained with data of an erased customer ({who.pseudonym})",
            )
        )
        marked += 1
    return marked


def erase(engine: Engine, *, tenant: str, confirm: str, by: str, archive_url: str, now: datetime) -> dict:
    """Erase one customer; returns the receipt (pseudonym, counts per class, what was kept and why)."""
    if confirm != tenant:
        raise NotConfirmed("--confirm must repeat the tenant id")
    where = archive_location.location(archive_url)
    # An archive run meanwhile could write the customer's rows to a file after its folder is removed.
    with archive_lock.exclusive(engine, wait=True):
        # Before anything is noted or removed: a copy of this database sharing the store folder stops here.
        store = archive_store.checked(engine, where)  # may draw the store's id
        customer_id = _note_start(engine, tenant=tenant, by=by, now=now)
        done = _Done(where, store)
        try:
            return _erase(engine, tenant=tenant, by=by, now=now, done=done)
        except Exception as exc:
            if customer_id is not None:
                _note_failure(engine, exc, customer_id, tenant=tenant, done=done, by=by, now=now)
            raise


def reapply(engine: Engine, *, by: str, archive_url: str, now: datetime) -> list[dict]:
    """Erase again each customer the database holds though the archive's erasure ledger lists it as erased (a
    database put back from a copy older than the erasure), and complete each unfinished erasure; their
    receipts."""
    where = archive_location.location(archive_url)
    with archive_lock.exclusive(engine, wait=True):
        store = archive_store.checked(engine, where)
        with engine.connect() as conn:
            try:
                erasure_ledger.write_back(conn, where, store)  # each ledger then holds what the other does
            except OSError as exc:
                exc.add_note(f"nothing was erased: once that is mended, `{erasure_ledger.REAPPLY}` again")
                raise
            tenants = [tenant for tenant, _ in erasure_ledger.restored(conn, where, store)]
            begun = select(Customer.tenant).where(
                Customer.id.in_(unfinished(conn)), Customer.tenant.not_in(tenants)
            )
            tenants += conn.scalars(begun.order_by(Customer.id))  # killed (before its ledger entry, say)
    return [erase(engine, tenant=t, confirm=t, by=by, archive_url=archive_url, now=now) for t in tenants]


STARTED = "erasure_started"
# Ends of an erasure that raised: nothing erased (no longer unfinished), or stopped after something was.
FAILED = "erasure_failed"
INTERRUPTED = "erasure_interrupted"


@dataclass
class _Done:
    """How far an erasure went before it raised: what it leaves behind."""

    where: archive_location.Location
    store: str
    pseudonym: str | None = None  # its ledger entries' name, once it may have written them
    removed: int = 0  # archive files (or folders) removed, or being removed when it raised
    committing: bool = False  # its commit was sent: done or not, the database alone can tell

    def left(self) -> str | None:
        """What of the erasure is done for good, if anything (its ledger entries taken back first)."""
        if self.committing:
            return (
                "its commit failed, its erasure ledger entry written and its archive files, if any, removed"
            )
        if self.removed:
            return "some of its archive files are gone"
        if self.pseudonym is not None and not erasure_ledger.withdrawn(
            self.where, self.store, self.pseudonym
        ):
            return "its erasure ledger entry could not be taken back"
        return None


def _note_start(engine: Engine, *, tenant: str, by: str, now: datetime) -> int | None:
    """Commit an audit line that the erasure of the customer began (its id; None: no such customer): from its
    ledger entry and first file removal on, what a crash leaves names or lacks the customer, and `unfinished`
    names it until a rerun completes (and pseudonymises this line like the others), or its end is noted
    (`_note_failure`)."""
    with for_writing(engine).begin() as conn:
        customer_id = conn.scalar(select(Customer.id).where(Customer.tenant == tenant))
        if customer_id is not None and not unfinished(conn, [customer_id]):
            entry = audit.entry("customer", customer_id, STARTED, audit.as_actor(by), {}, now)
            conn.execute(WorkflowEvent.__table__.insert().values(**entry))
    return customer_id


def _note_failure(
    engine: Engine, exc: Exception, customer_id: int, *, tenant: str, done: _Done, by: str, now: datetime
) -> None:
    """Say how the erasure that raised `exc` ended, as a note on it (the command prints it) and an audit line
    with the reason: FAILED when nothing was erased (its ledger entries taken back), so it is no longer
    unfinished; else INTERRUPTED, and unfinished until `rerun` or `--reapply` completes it. A database that
    takes no line (gone, full) leaves the erasure unfinished."""
    left = done.left()
    if left is None:
        action, note = FAILED, f"nothing was erased: once that is mended, `{rerun(tenant)}` again"
    else:
        action = INTERRUPTED
        note = (
            f"the erasure did not complete ({left}): `{rerun(tenant)}` again, or `{erasure_ledger.REAPPLY}`, "
            "completes it"
        )
    exc.add_note(note)
    try:
        with for_writing(engine).begin() as conn:
            if conn.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
                exc.add_note(
                    f"yet no customer {tenant!r} is left: the database committed its erasure after all"
                )
                return
            line = {"reason": "; ".join([errors.reason(exc), *exc.__notes__])}
            entry = audit.entry("customer", customer_id, action, audit.as_actor(by), line, now)
            conn.execute(WorkflowEvent.__table__.insert().values(**entry))
    except SQLAlchemyError as second:
        log.warning("the erasure of %s failed, and the audit trail could not record it: %s", tenant, second)


def rerun(tenant: str) -> str:
    """The command that completes an erasure of `tenant` that was killed or failed."""
    return f"servicecast customers erase {tenant} --confirm {tenant}"


def unfinished(conn: Connection, customer_ids: list[int] | None = None) -> set[int]:
    """Those of these customers (None: of all) whose erasure began and did not complete: killed, or stopped
    after it erased something (not one that failed with nothing erased, `FAILED`)."""
    w = WorkflowEvent.__table__.c
    among = w.subject_id.is_not(None) if customer_ids is None else w.subject_id.in_(customer_ids or [-1])

    def last(action: str) -> dict[int, int]:
        query = select(w.subject_id, func.max(w.id)).where(w.subject == "customer", w.action == action, among)
        return {customer: at for customer, at in conn.execute(query.group_by(w.subject_id))}

    failed = last(FAILED)
    return {customer for customer, at in last(STARTED).items() if at > failed.get(customer, 0)}


def to_finish(conn: Connection, customers: list[Customer]) -> dict[int, str]:
    """Per customer (by id) whose erasure is unfinished: the command that completes it."""
    erasing = unfinished(conn, [c.id for c in customers])
    return {c.id: rerun(c.tenant) for c in customers if c.id in erasing}


def _erase(engine: Engine, *, tenant: str, by: str, now: datetime, done: _Done) -> dict:
    """Delete the customer's rows and its archive files (its folder in the store folder among them), in one
    transaction, and record it in the erasure ledger; the caller holds the archive lock. The receipt returned
    also lists, by path, the files left in its folder at the archive root. `done` says how far it went."""
    where, store = done.where, done.store
    folder = f"{store}/tenant={tenant}"
    with for_writing(engine).begin() as conn:  # gathers, then deletes: the write lock from BEGIN
        who = _gather(conn, tenant)
        if who is None:
            return {**_after_erasure(conn, tenant, by=by, now=now), "left_in_archive": []}
        from fleet import archive_legacy  # pyarrow: for a customer there is

        counts = _counts(conn, who)
        files = list(conn.scalars(select(ArchiveFile.path).where(ArchiveFile.customer_id == who.customer_id)))
        archived_rows = conn.scalar(
            select(func.coalesce(func.sum(ArchiveFile.rows), 0)).where(
                ArchiveFile.customer_id == who.customer_id
            )
        )
        owner = archive_legacy.Owner(who.customer_id, frozenset(who.machine_ids))
        unregistered, left = archive_legacy.sort(where, tenant, owner, registered=set(files))
        counts.update(
            archive_files=len(files),
            archive_rows=int(archived_rows or 0),
            **erasure_names.delete_named(conn, tenant, who.machine_codes),
            model_versions_marked=_mark_models(conn, who),
            audit_lines_pseudonymised=_pseudonymise_audit(conn, who),
        )
        # Written before the commit (and its files): a database put back from before it is then told by it.
        ledger = {"customer_id": who.customer_id, "pseudonym": who.pseudonym, "at": now}
        done.pseudonym = who.pseudonym
        ledger = erasure_ledger.write(conn, where, store, **ledger)
        told = erasure_notices.crm_destinations(conn, who.customer_id)  # its outbox rows go in the cascade
        conn.execute(delete(Customer).where(Customer.id == who.customer_id))  # the cascade
        kept = {
            "audit": "audit lines are a legal record: kept, with the customer's ids, codes and user names "
            "replaced by the pseudonym (in the lines about it also its name, serials and sites)"
        }
        if left:
            kept["archive_files"] = who.scrub_text(_left(left))
        receipt_id, receipt = _receipt(
            conn, who.pseudonym, by=by, now=now, counts=counts, kept=kept, ledger=ledger
        )
        erasure_notices.record(
            conn, receipt_id=receipt_id, customer_id=who.customer_id, tenant=tenant, at=now, destinations=told
        )
        # The files go before the commit: a crash or a storage error until then rolls the rows back, the
        # customer stays (with fewer files), and `customers erase` again finishes; a receipt means no file.
        paths = [where.path(p) for p in files] + unregistered
        _remove_files(where, paths, where.path(folder), archive_legacy.folder(where, tenant), done=done)
        done.committing = True
    return {**receipt, "left_in_archive": [{"file": path, "why": why} for path, _, why in left]}


def _after_erasure(conn: Connection, tenant: str, *, by: str, now: datetime) -> dict:
    """Delete what names a tenant with no customer (an erased one's late messages); LookupError if nothing."""
    counts = erasure_names.delete_named(conn, tenant, set())
    if not any(counts.values()):
        raise LookupError(f"no customer {tenant!r}")
    return _receipt(conn, _pseudonym(), by=by, now=now, counts=counts, kept={})[1]


def _pseudonym() -> str:
    return f"erased-{secrets.token_hex(6)}"


def _receipt(
    conn: Connection,
    pseudonym: str,
    *,
    by: str,
    now: datetime,
    counts: dict,
    kept: dict,
    ledger: dict | None = None,
) -> tuple[int, dict]:
    """Write the erasure's audit line (by the pseudonym) and receipt, with its `ledger` entry (not printed);
    returns the receipt's id and it."""
    entry = audit.entry("customer", None, "erased", audit.as_actor(by), {"pseudonym": pseudonym}, now)
    conn.execute(WorkflowEvent.__table__.insert().values(**entry))
    receipt = {"pseudonym": pseudonym, "at": now, "by": by, "counts": counts, "kept": kept}
    insert = ErasureReceipt.__table__.insert().values(**receipt, ledger=ledger)
    receipt_id = conn.scalar(insert.returning(ErasureReceipt.id))
    return receipt_id, receipt


def _left(left: list[tuple[str, str, str]]) -> str:
    """The receipt's words for the files an erasure left in the customer's folder at the archive root."""
    named = "; ".join(f"{name}: {why}" for _, name, why in left)
    return (
        f"{len(left)} file(s) left in the customer's folder at the archive root, where archive runs before "
        f"migration 0024 wrote, not shown to be this database's files of the customer: {named}. Check and "
        "remove them by hand"
    )


def _remove_files(
    where: archive_location.Location, paths: list[str], folder: str, legacy: str, *, done: _Done
) -> None:
    """Remove the customer's archive files, then its folder in this database's store (with a killed run's
    leftovers); files already gone are skipped. Its folder at the root (`archive_legacy`) goes once empty: the
    files left there are named on the receipt."""
    for path in [*paths, folder, legacy]:
        try:
            if where.fs.exists(path) and (path != legacy or not where.fs.find(legacy)):
                recursive = path in (folder, legacy)
                done.removed += recursive  # a folder's files may be partly gone when it raises
                where.fs.rm(path, recursive=recursive)
                done.removed += not recursive
        except OSError as exc:  # not permitted, storage gone: the reader's words seldom name the file
            raise OSError(f"archive file {path} cannot be removed: {exc.strerror or exc}") from exc
