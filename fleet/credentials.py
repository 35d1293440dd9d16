"""One broker identity per machine: issue, rotate and revoke it; write Mosquitto's password and ACL files."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from fleet import errors
from fleet.db import for_writing, session
from fleet.tables import Customer, Machine, MachineCredential, SparkplugCredential, utcnow

PASSWORD_FILE = "passwords"
ACL_FILE = "servicecast.acl"
DEFAULT_INGEST_USER = "servicecast-ingest"
# Mosquitto's own default. The passwords are 256-bit random tokens, so their strength is the entropy, not
# the iteration count; a low count keeps a reconnect storm of every machine after a broker restart cheap.
HASH_ITERATIONS = 101
_SALT_BYTES = 12  # as mosquitto_passwd


@dataclass(frozen=True)
class Issued:
    """A credential as handed to the machine, once; only the hash of `password` is stored."""

    username: str
    password: str


def machine_username(tenant: str, machine: str) -> str:
    """A machine's MQTT user name; ids never contain '/', so `tenant/machine` is unambiguous."""
    return f"{tenant}/{machine}"


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """The `$7$` hash (PBKDF2-HMAC-SHA512) that Mosquitto ≥ 2.0 reads, as mosquitto_passwd writes it."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def issue(*, engine: Engine, tenant: str, machine: str) -> Issued:
    """Issue a machine's credential, or rotate it: the new password replaces any earlier one."""
    password = secrets.token_urlsafe(32)
    with session(for_writing(engine)) as sess:
        machine_id = _machine_id(sess, tenant, machine)
        row = sess.scalar(select(MachineCredential).where(MachineCredential.machine_id == machine_id))
        if row is None:
            row = MachineCredential(machine_id=machine_id, username=machine_username(tenant, machine))
            sess.add(row)
        row.password_hash = mosquitto_hash(password)
        row.issued_at = utcnow()
        row.revoked_at = None
        return Issued(username=row.username, password=password)


def revoke(*, engine: Engine, tenant: str, machine: str) -> None:
    """Revoke a machine's credential; the broker refuses it once its password file is rewritten."""
    with session(for_writing(engine)) as sess:
        machine_id = _machine_id(sess, tenant, machine)
        row = sess.scalar(
            select(MachineCredential).where(
                MachineCredential.machine_id == machine_id, MachineCredential.revoked_at.is_(None)
            )
        )
        if row is None:
            raise errors.NotFound(f"machine {tenant}/{machine} has no credential to revoke")
        row.revoked_at = utcnow()


def edge_node_username(group: str, edge_node: str) -> str:
    """`spBv1.0/{group}/{edge node}`: two '/', so never a machine's `tenant/machine`."""
    if group == "STATE":
        raise errors.InvalidInput("a Sparkplug group must not be called STATE (spBv1.0/STATE is the hosts')")
    return f"spBv1.0/{sparkplug_id(group)}/{sparkplug_id(edge_node)}"


def host_username(host_id: str) -> str:
    """`spBv1.0/STATE/{host id}`, the name of a Sparkplug host's own identity."""
    return f"spBv1.0/STATE/{sparkplug_id(host_id)}"


def sparkplug_topic_id(part: str) -> str:
    """`part` if a Sparkplug topic can carry it (non-empty, none of the / + # Sparkplug reserves), else
    InvalidInput saying why."""
    if not part or any(c in part for c in "/+#"):
        raise errors.InvalidInput(f"Sparkplug id {part!r} must be non-empty, without / + #")
    return part


def sparkplug_id(part: str) -> str:
    """`part` (a group, edge node or host id) if usable in a broker identity, else InvalidInput saying why."""
    # Stricter than the topic rule: ':' and spaces would break Mosquitto's files.
    if not part or any(c in part for c in "/+#:") or any(c.isspace() for c in part):
        raise errors.InvalidInput(f"Sparkplug id {part!r} must be non-empty, without / + # : or spaces")
    return part


def issue_sparkplug(*, engine: Engine, username: str) -> Issued:
    """Issue or rotate the credential of an edge node or a host (`edge_node_username`, `host_username`)."""
    password = secrets.token_urlsafe(32)
    with session(for_writing(engine)) as sess:
        row = sess.scalar(select(SparkplugCredential).where(SparkplugCredential.username == username))
        if row is None:
            row = SparkplugCredential(username=username)
            sess.add(row)
        row.password_hash = mosquitto_hash(password)
        row.issued_at = utcnow()
        row.revoked_at = None
        return Issued(username=username, password=password)


def revoke_sparkplug(*, engine: Engine, username: str) -> None:
    """Revoke an edge node's or host's credential."""
    with session(for_writing(engine)) as sess:
        row = sess.scalar(
            select(SparkplugCredential).where(
                SparkplugCredential.username == username, SparkplugCredential.revoked_at.is_(None)
            )
        )
        if row is None:
            raise errors.NotFound(f"{username} has no credential to revoke")
        row.revoked_at = utcnow()


def _sparkplug_rows(engine: Engine) -> list[tuple[str, str]]:
    query = (
        select(SparkplugCredential.username, SparkplugCredential.password_hash)
        .where(SparkplugCredential.revoked_at.is_(None))
        .order_by(SparkplugCredential.username)
    )
    with session(engine) as sess:
        return [tuple(row) for row in sess.execute(query)]


def sparkplug_acl(usernames: list[str]) -> str:
    """ACL lines of each Sparkplug identity: a node writes and reads only its own topics, a host all."""
    lines = ["", "# Sparkplug B: an edge node writes and reads only its own topics; a host reads them all."]
    for username in usernames:
        _, first, second = username.split("/")
        lines += ["", f"user {username}"]
        if first == "STATE":
            lines += ["topic read spBv1.0/#", f"topic write spBv1.0/STATE/{second}"]
            lines += ["topic write spBv1.0/+/NCMD/+", "topic write spBv1.0/+/DCMD/+/+"]
            continue
        group, node = first, second
        lines += [f"topic write spBv1.0/{group}/{kind}/{node}" for kind in ("NBIRTH", "NDATA", "NDEATH")]
        lines += [f"topic write spBv1.0/{group}/{kind}/{node}/+" for kind in ("DBIRTH", "DDATA", "DDEATH")]
        lines += [f"topic read spBv1.0/{group}/NCMD/{node}", f"topic read spBv1.0/{group}/DCMD/{node}/+"]
        lines += ["topic read spBv1.0/STATE/+"]
    return "\n".join(lines) + "\n" if usernames else ""


def _machine_id(sess, tenant: str, machine: str) -> int:  # noqa: ANN001
    machine_id = sess.scalar(
        select(Machine.id)
        .join(Customer, Machine.customer_id == Customer.id)
        .where(Customer.tenant == tenant, Machine.code == machine)
    )
    if machine_id is None:
        raise errors.MachineNotFound(f"no machine {tenant}/{machine}")
    return machine_id


def password_file(*, engine: Engine, ingest_user: str, ingest_password: str) -> str:
    """Mosquitto's password file: the ingester, then every machine whose credential is not revoked."""
    if "/" in ingest_user or ":" in ingest_user:
        raise errors.InvalidInput("the ingester's MQTT user name must not contain '/' or ':'")
    query = (
        select(MachineCredential.username, MachineCredential.password_hash)
        .where(MachineCredential.revoked_at.is_(None))
        .order_by(MachineCredential.username)
    )
    with session(engine) as sess:
        machines = sess.execute(query).all()
    lines = [f"{ingest_user}:{mosquitto_hash(ingest_password)}"]
    lines += [f"{username}:{password_hash}" for username, password_hash in machines]
    lines += [f"{username}:{password_hash}" for username, password_hash in _sparkplug_rows(engine)]
    return "\n".join(lines) + "\n"


def acl(ingest_user: str = DEFAULT_INGEST_USER) -> str:
    """Mosquitto's ACL file: each machine writes only its own topics, the ingester reads them all."""
    return (
        "# Written by `servicecast machines broker-config`; after a change, send Mosquitto SIGHUP.\n"
        "# A machine's user name is `tenant/machine` (Mosquitto puts it in for %u), so it may publish\n"
        "# on its own topics only; no line per machine is needed.\n"
        "pattern write fleet/%u/telemetry\n"
        "pattern write fleet/%u/events\n"
        "\n"
        "# The ingester reads every machine's topics (also through a shared subscription).\n"
        f"user {ingest_user}\n"
        "topic read fleet/#\n"
    )


def write_broker_config(*, engine: Engine, out: Path, ingest_user: str, ingest_password: str) -> list[Path]:
    """(Re)write the password and ACL files in `out`, each replaced atomically; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / PASSWORD_FILE: password_file(
            engine=engine, ingest_user=ingest_user, ingest_password=ingest_password
        ),
        out / ACL_FILE: acl(ingest_user) + sparkplug_acl([name for name, _ in _sparkplug_rows(engine)]),
    }
    for path, text in files.items():
        _replace(path, text)
    return list(files)


def _replace(path: Path, text: str) -> None:
    """Write beside the file and rename over it, so that a reloading broker never reads half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        file.write(text)
    try:
        previous = path.stat()
    except FileNotFoundError:
        os.chmod(temporary, 0o640)
    else:
        # Keep what the operator set up so that the broker (often its own user) can still read it.
        os.chmod(temporary, stat.S_IMODE(previous.st_mode))
        try:
            os.chown(temporary, previous.st_uid, previous.st_gid)
        except PermissionError:
            pass
    os.replace(temporary, path)
