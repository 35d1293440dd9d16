"""asyncua's own log while the OPC UA server is away: no traceback a second, a refused publish in one line."""

from __future__ import annotations

import logging

from asyncua import ua


class ServerAwayNoise(logging.Filter):
    """asyncua's publish loop logs a traceback every second while the server is away (a machine switched off
    for the night: ~40,000); its reconnect says so once per attempt, with backoff. A server's answer to a
    publish (one back from a restart that forgot the session answers BadUserAccessDenied until asyncua
    re-creates it) is told in one line naming the status, not a traceback: it stays visible if it lasts."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Publish iteration crashed") or record.exc_info is None:
            return True
        error = record.exc_info[1]
        if isinstance(error, ua.UaStatusCodeError):
            record.msg, record.args, record.exc_info = (
                "the OPC UA server refused a publish request (%s); asyncua retries in 1 s",
                (ua.StatusCode(error.code).name,),
                None,
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return not isinstance(error, OSError)


SERVER_AWAY_NOISE = ServerAwayNoise()
