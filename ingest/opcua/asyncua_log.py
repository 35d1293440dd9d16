"""asyncua's own log while the OPC UA server is away: no traceback a second, a refused publish in one line."""

from __future__ import annotations

import logging

from asyncua import ua

from ingest.opcua.connection import lost


class ServerAwayNoise(logging.Filter):
    """asyncua's publish loop logs a traceback every second while the server is away (a machine switched off
    for the night: ~40,000); its reconnect says so once per attempt, with backoff. A server's answer to a
    publish (one back from a restart that forgot the session answers BadUserAccessDenied until asyncua
    re-creates it) is told in one line naming the status, not a traceback: it stays visible if it lasts.
    So is a connection lost under its stale-subscription watchdog's re-creation of the subscription, from
    which asyncua then reconnects as from any other loss."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        if str(record.msg).endswith("recreate failed; escalating to reconnect") and lost(error):
            _one_warning(
                record,
                "lost the OPC UA server re-creating a stale subscription (%s); asyncua reconnects",
                f"{type(error).__name__}: {error}",
            )
        elif str(record.msg).startswith("Publish iteration crashed"):
            if not isinstance(error, ua.UaStatusCodeError):
                return not isinstance(error, OSError)
            name = ua.StatusCode(error.code).name
            _one_warning(
                record, "the OPC UA server refused a publish request (%s); asyncua retries in 1 s", name
            )
        return True


def _one_warning(record: logging.LogRecord, msg: str, arg: str) -> None:
    """Rewrite the record as a one-line warning."""
    record.msg, record.args, record.exc_info = msg, (arg,), None
    record.levelno, record.levelname = logging.WARNING, "WARNING"


SERVER_AWAY_NOISE = ServerAwayNoise()
# The asyncua loggers it quiets: the publish loop's and the stale-subscription watchdog's.
NOISY_LOGGERS = ("asyncua.client.ua_session.UaSession", "asyncua.client.client")
