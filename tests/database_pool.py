"""Test PostgreSQL databases used again: a database a test has finished with is reset to its template's state
and given to the next test, instead of being dropped and another created.

Each CREATE DATABASE dirties the ~1,000 files of a copy and each DROP DATABASE forces a checkpoint that
fsyncs every file dirtied since the one before: minutes of fsyncs per run, which every test that commits
waits behind (docs/benchmarks.md, nineteenth round). A reset dirties only the files of the tables the test
wrote to.

The reset is exact or not done: the database is renamed (a session of the last test that connects again
finds no database), partitions the test added are dropped, tables with rows are truncated, the template's
rows and sequence values are put back, the statistics counters cleared; then the catalog (every object,
definition, owner, grant, setting, planner statistic), the rows and the sequences are compared with the
template's. Any difference, or any error on the way, and the database is dropped instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from tests import services

# Databases per template being reset in the background while tests run on others; `take` then waits for one.
RESETS_AHEAD = 2
_USER_SCHEMAS = (
    "SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND nspname !~ '^pg_(toast|temp_|toast_temp_)'"
)
_CLASSES = f"SELECT oid FROM pg_class WHERE relnamespace IN ({_USER_SCHEMAS})"

# One line per object of the database's own (names, never OIDs: a dropped and re-made object gets a new OID),
# hashed in a stable order. What a test can change and a later test could see is here.
_CATALOG = text(f"""
SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
  SELECT concat_ws(' ', 'schema', nspname, nspowner::regrole, nspacl) AS line
    FROM pg_namespace WHERE oid IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'rel', c.oid::regclass, relkind, relpersistence, relowner::regrole,
      reloptions, relacl, relrowsecurity, relforcerowsecurity, relreplident, relispartition,
      pg_get_expr(relpartbound, c.oid), relpages, reltuples, relallvisible, relhasindex, relhastriggers,
      relhasrules, relhassubclass, relam, reltablespace, obj_description(c.oid, 'pg_class'))
    FROM pg_class c WHERE c.oid IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'col', attrelid::regclass, attnum, attname, atttypid::regtype, atttypmod,
      attnotnull, atthasdef, attidentity, attgenerated, attisdropped, attstattarget, attcollation, attacl,
      attoptions, pg_get_expr(d.adbin, d.adrelid), col_description(attrelid, attnum))
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE attrelid IN ({_CLASSES}) AND attnum > 0
  UNION ALL SELECT concat_ws(' ', 'constraint', conrelid::regclass, contypid::regtype, conname,
      pg_get_constraintdef(oid), condeferrable, condeferred, convalidated)
    FROM pg_constraint WHERE connamespace IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'index', pg_get_indexdef(indexrelid), indisvalid, indisready, indislive,
      indisclustered, indisreplident)
    FROM pg_index WHERE indrelid IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'trigger', tgrelid::regclass, tgname, tgenabled,
      CASE WHEN tgisinternal THEN tgfoid::regproc::text ELSE pg_get_triggerdef(oid) END)
    FROM pg_trigger WHERE tgrelid IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'function', oid::regprocedure, prokind, provolatile, prosecdef,
      proowner::regrole, proacl, proconfig, md5(prosrc), prorettype::regtype)
    FROM pg_proc WHERE pronamespace IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'type', oid::regtype, typtype, typowner::regrole, typnotnull, typdefault,
      typbasetype::regtype, typacl)
    FROM pg_type WHERE typnamespace IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'enum', enumtypid::regtype, enumsortorder, enumlabel)
    FROM pg_enum WHERE enumtypid IN (SELECT oid FROM pg_type WHERE typnamespace IN ({_USER_SCHEMAS}))
  UNION ALL SELECT concat_ws(' ', 'rule', ev_class::regclass, rulename, ev_enabled, pg_get_ruledef(oid))
    FROM pg_rewrite WHERE ev_class IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'policy', polrelid::regclass, polname, polcmd, polpermissive, polroles,
      pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy
  UNION ALL SELECT concat_ws(' ', 'sequence', seqrelid::regclass, seqtypid::regtype, seqstart, seqincrement,
      seqmax, seqmin, seqcache, seqcycle)
    FROM pg_sequence WHERE seqrelid IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'inherits', inhrelid::regclass, inhparent::regclass, inhseqno)
    FROM pg_inherits
  UNION ALL SELECT concat_ws(' ', 'statistic', starelid::regclass, staattnum, stainherit)
    FROM pg_statistic WHERE starelid IN ({_CLASSES})
  UNION ALL SELECT concat_ws(' ', 'extended statistic', stxrelid::regclass, stxname) FROM pg_statistic_ext
  UNION ALL SELECT concat_ws(' ', 'extension', extname, extversion, extnamespace::regnamespace)
    FROM pg_extension
  UNION ALL SELECT concat_ws(' ', 'comment', classoid::regclass, objoid, objsubid, description)
    FROM pg_description WHERE classoid <> 'pg_class'::regclass OR objoid < 16384
  UNION ALL SELECT concat_ws(' ', 'system grant', oid::regprocedure, proacl) FROM pg_proc
    WHERE proacl IS NOT NULL AND pronamespace NOT IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'system grant', oid::regclass, relacl) FROM pg_class
    WHERE relacl IS NOT NULL AND relnamespace NOT IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'system grant', nspname, nspacl) FROM pg_namespace
    WHERE oid NOT IN ({_USER_SCHEMAS}) AND nspname !~ '^pg_(toast_)?temp_'
  UNION ALL SELECT concat_ws(' ', 'system grant', oid::regtype, typacl) FROM pg_type
    WHERE typacl IS NOT NULL AND typnamespace NOT IN ({_USER_SCHEMAS})
  UNION ALL SELECT concat_ws(' ', 'language', lanname, lanacl) FROM pg_language
  UNION ALL SELECT concat_ws(' ', 'large objects', count(*)) FROM pg_largeobject_metadata
  UNION ALL SELECT concat_ws(' ', 'publication', pubname) FROM pg_publication
  UNION ALL SELECT concat_ws(' ', 'event trigger', evtname, evtenabled) FROM pg_event_trigger
  UNION ALL SELECT concat_ws(' ', 'default acl', defaclrole::regrole, defaclobjtype, defaclacl)
    FROM pg_default_acl
  UNION ALL SELECT concat_ws(' ', 'database', datdba::regrole, datallowconn, datconnlimit, datacl,
      dattablespace, datistemplate)
    FROM pg_database WHERE datname = current_database()
  UNION ALL SELECT concat_ws(' ', 'setting', setrole, setconfig) FROM pg_db_role_setting
    WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  UNION ALL SELECT concat_ws(' ', 'prepared', gid) FROM pg_prepared_xacts WHERE database = current_database()
  UNION ALL SELECT concat_ws(' ', 'slot', slot_name) FROM pg_replication_slots
    WHERE database = current_database()
  UNION ALL SELECT concat_ws(' ', 'subscription', subname) FROM pg_subscription
    WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
) lines
""")
# Tables with storage (partitioned parents have none), and the partitions among them.
_TABLES = text(
    f"SELECT oid::regclass::text AS name, relispartition FROM pg_class WHERE oid IN ({_CLASSES}) "
    "AND relkind = 'r' ORDER BY 1"
)
# The planner's figures of each relation: TRUNCATE sets them as for a table never analyzed (an index built on
# an empty table has other ones), and the reset puts the template's back, as ANALYZE would write them.
_SIZES = text(
    f"SELECT oid::regclass::text AS name, relpages, reltuples, relallvisible FROM pg_class "
    f"WHERE oid IN ({_CLASSES})"
)
_SEQUENCES = text(
    f"SELECT oid::regclass::text AS name FROM pg_class WHERE oid IN ({_CLASSES}) AND relkind = 'S' ORDER BY 1"
)


@dataclass(frozen=True)
class Snapshot:
    """What a fresh copy of a template holds: its catalog's hash, its tables, its rows, its sequences."""

    catalog: str
    tables: tuple[str, ...]
    partitions: frozenset[str]
    # a table with rows: their digest (in physical order), and COPY's bytes
    rows: dict[str, tuple[str, bytes]]
    sequences: dict[str, tuple[int, bool]]
    sizes: dict[str, tuple[int, float, int]]

    @classmethod
    def take(cls, conn: Connection) -> Snapshot:
        tables = conn.execute(_TABLES).all()
        filled = _filled(conn, [t.name for t in tables])
        rows = {name: (_digest(conn, name), _copy_out(conn, name)) for name in filled}
        return cls(
            catalog=conn.scalar(_CATALOG),
            tables=tuple(t.name for t in tables),
            partitions=frozenset(t.name for t in tables if t.relispartition),
            rows=rows,
            sequences=_sequences(conn),
            sizes=_sizes(conn),
        )


def _filled(conn: Connection, tables: list[str]) -> list[str]:
    """The tables among `tables` that hold a row."""
    if not tables:
        return []
    probes = " UNION ALL ".join(
        f"SELECT {i} WHERE EXISTS (SELECT FROM ONLY {name})" for i, name in enumerate(tables)
    )
    return [tables[i] for i in conn.scalars(text(probes))]


def _digest(conn: Connection, table: str) -> str:
    return conn.scalar(text(f"SELECT md5(string_agg(t::text, E'\\n' ORDER BY ctid)) FROM ONLY {table} t"))


def _columns(conn: Connection, table: str) -> str:
    """The columns COPY may write (a generated column is computed again)."""
    names = conn.scalars(
        text(
            "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) "
            "AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"
        ),
        {"t": table},
    )
    return ", ".join(names)


def _copy_out(conn: Connection, table: str) -> bytes:
    cursor = conn.connection.dbapi_connection.cursor()
    data = bytearray()
    with cursor.copy(
        f"COPY (SELECT {_columns(conn, table)} FROM ONLY {table}) TO STDOUT (FORMAT binary)"
    ) as copy:
        for block in copy:
            data += block
    return bytes(data)


def _copy_in(conn: Connection, table: str, data: bytes) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(f"COPY {table} ({_columns(conn, table)}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(data)


def _sequences(conn: Connection) -> dict[str, tuple[int, bool]]:
    names = conn.scalars(_SEQUENCES).all()
    return {
        name: tuple(conn.execute(text(f"SELECT last_value, is_called FROM {name}")).one()) for name in names
    }


def _sizes(conn: Connection) -> dict[str, tuple[int, float, int]]:
    return {row.name: (row.relpages, row.reltuples, row.relallvisible) for row in conn.execute(_SIZES)}


def reset(conn: Connection, snapshot: Snapshot) -> str | None:
    """Bring the database `conn` is on back to `snapshot`; what still differs afterwards, or None."""
    conn.execute(text("SET session_replication_role = replica"))  # no trigger of ours, no foreign key check
    tables = conn.execute(_TABLES).all()
    added = [t.name for t in tables if t.relispartition and t.name not in snapshot.partitions]
    for name in added:
        conn.execute(text(f"DROP TABLE {name}"))
    names = [t.name for t in tables if t.name not in added]
    changed = [
        name
        for name in _filled(conn, names)
        if name not in snapshot.rows or _digest(conn, name) != snapshot.rows[name][0]
    ]
    if changed:
        conn.execute(text(f"TRUNCATE {', '.join(changed)} CASCADE"))
    for name, (digest, data) in snapshot.rows.items():
        if _digest(conn, name) != digest:
            conn.execute(text(f"TRUNCATE ONLY {name}"))
            _copy_in(conn, name, data)
    sequences = _sequences(conn)
    for name, (value, called) in snapshot.sequences.items():
        if sequences.get(name) == (value, called):
            continue  # a setval writes the sequence's page even when the value is the same
        conn.execute(
            text("SELECT setval(CAST(:s AS regclass), :v, :c)"), {"s": name, "v": value, "c": called}
        )
    sizes = _sizes(conn)
    for name, (pages, tuples, visible) in snapshot.sizes.items():
        if sizes.get(name) != (pages, tuples, visible):
            conn.execute(
                text(
                    "UPDATE pg_class SET relpages = :p, reltuples = :t, relallvisible = :v "
                    "WHERE oid = CAST(:n AS regclass)"
                ),
                {"p": pages, "t": tuples, "v": visible, "n": name},
            )
    conn.execute(text("SELECT pg_stat_reset()"))
    conn.execute(text("RESET session_replication_role"))
    return difference(conn, snapshot)


def difference(conn: Connection, snapshot: Snapshot) -> str | None:
    """What the database `conn` is on has that `snapshot` has not, in a few words; None if nothing."""
    if conn.scalar(_CATALOG) != snapshot.catalog:
        return "its catalog"
    tables = tuple(conn.scalars(text(f"SELECT name FROM ({_TABLES.text}) t")))
    if tables != snapshot.tables:
        return "its tables"
    for name in _filled(conn, list(tables)):
        if name not in snapshot.rows or _digest(conn, name) != snapshot.rows[name][0]:
            return f"the rows of {name}"
    for name in snapshot.rows:
        if _digest(conn, name) != snapshot.rows[name][0]:
            return f"the rows of {name}"
    if _sequences(conn) != snapshot.sequences:
        return "its sequences"
    return None


class DatabasePool:
    """A process's test databases, per template, reset in a thread of their own while the next test runs."""

    def __init__(self, drops: services.BackgroundDrops, *, ahead: int = RESETS_AHEAD) -> None:
        self.drops = drops
        self.ahead = ahead
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reset-database")
        self.ready: dict[str | None, list[services.PostgresDatabase]] = {}
        self.resetting: dict[str | None, list[tuple[services.PostgresDatabase, Future]]] = {}
        self.snapshots: dict[str | None, Snapshot] = {}
        self.dropped: list[str] = []  # why each database given back was dropped instead of reused

    def take(self, template: str | None) -> services.PostgresDatabase:
        """A database as fresh as a copy of `template` (an empty one for None) made now: one reset since its
        last test, else a new copy (unless `ahead` are being reset: then the first is waited for)."""
        ready = self.ready.setdefault(template, [])
        resetting = self.resetting.setdefault(template, [])
        while not ready and resetting and (resetting[0][1].done() or len(resetting) >= self.ahead):
            self._settle_first(template)
        if ready:
            return ready.pop()
        db = services.PostgresDatabase().create(template=template)
        if template not in self.snapshots:
            with _connected(db.url) as conn:
                self.snapshots[template] = Snapshot.take(conn)
        return db

    def give_back(self, db: services.PostgresDatabase) -> None:
        """Reset the database a test has finished with, for a later test; dropped if it cannot be exact."""
        future = self.thread.submit(self._reset, db, self.snapshots[db.template])
        self.resetting.setdefault(db.template, []).append((db, future))

    def settle(self) -> None:
        """Wait for the resets under way."""
        for template, resetting in self.resetting.items():
            while resetting:
                self._settle_first(template)

    def close(self) -> None:
        """Drop the databases kept for the next test."""
        self.settle()
        self.thread.shutdown()
        for ready in self.ready.values():
            for db in ready:
                self.drops.drop(db)
        self.ready.clear()

    def _settle_first(self, template: str | None) -> None:
        db, future = self.resetting[template].pop(0)
        why = future.result()
        if why is None:
            self.ready.setdefault(template, []).append(db)
            return
        self.dropped.append(why)
        self.drops.drop(db)

    @staticmethod
    def _reset(db: services.PostgresDatabase, snapshot: Snapshot) -> str | None:
        try:
            db.rename(f"sc_test_{uuid.uuid4().hex[:12]}")
            with _connected(db.url) as conn:
                return reset(conn, snapshot)
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the database is dropped instead
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A transaction on the database at `url`, committed at the end, its engine disposed of."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()
