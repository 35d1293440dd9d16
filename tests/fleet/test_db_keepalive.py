"""PostgreSQL connections carry TCP keepalives, so a connection a NAT dropped fails in minutes, not hours."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from fleet import db
from fleet.settings import MqttEndpoint, Settings
from ingest.service import Ingester

pytestmark = pytest.mark.postgres
NEVER_CONNECTED = MqttEndpoint("mqtt://127.0.0.1:1")  # the ingester here is built, never started


def keepalive_of(engine: Engine) -> tuple[int, int, int, int]:
    """SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT of a pooled connection's own socket."""
    with engine.connect() as conn:
        fd = conn.connection.dbapi_connection.pgconn.socket
        with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as sock:
            return (
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            )


@pytest.mark.parametrize("read_only", [False, True])
def test_engines_from_the_settings_set_keepalives_on_their_sockets(postgres_url, read_only):
    settings = Settings(
        database_url=postgres_url,
        database_keepalive_idle_s=42,
        database_keepalive_interval_s=7,
        database_keepalive_count=3,
    )
    engine = db.engine_from_settings(settings, read_only=read_only)
    try:
        assert keepalive_of(engine) == (1, 42, 7, 3)
    finally:
        engine.dispose()


def test_the_defaults_notice_a_dead_peer_within_minutes(postgres_url):
    engine = db.make_engine(postgres_url)
    try:
        on, idle, interval, count = keepalive_of(engine)
    finally:
        engine.dispose()
    assert on == 1 and idle + interval * count <= 300  # the kernel's default is 2 h before the first probe


def test_keepalives_the_url_sets_win_over_the_settings(postgres_url):
    url = make_url(postgres_url).update_query_dict({"keepalives_idle": "17"})
    settings = Settings(database_url=url.render_as_string(hide_password=False), database_keepalive_idle_s=42)
    engine = db.engine_from_settings(settings)
    try:
        assert keepalive_of(engine)[1] == 17
    finally:
        engine.dispose()


def test_the_ingesters_writer_process_builds_its_engine_with_the_settings_keepalives(postgres_url):
    settings = Settings(database_url=postgres_url, database_keepalive_idle_s=33)
    engine = db.engine_from_settings(settings)
    try:
        ingester = Ingester(settings=settings, engine=engine, endpoint=NEVER_CONNECTED)
        # What the forked writer process runs: a pipeline on an engine of its own, built from the recipe.
        writer_engine = ingester.writer.committer.recipe.pipeline().engine
        try:
            assert keepalive_of(writer_engine)[1] == 33
        finally:
            writer_engine.dispose()
    finally:
        engine.dispose()
