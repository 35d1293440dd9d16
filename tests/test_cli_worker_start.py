"""`servicecast route` and `servicecast policy` start and pass once over a store without loading pandas."""

from __future__ import annotations

import pytest

from tests.test_cli_start import _imported, _on

WEBHOOK = {"SERVICECAST_WEBHOOK_URL": "http://127.0.0.1:9/hook", "SERVICECAST_WEBHOOK_SECRET": "s" * 32}


@pytest.mark.parametrize("command", [["route", "--once"], ["policy", "--once"]])
def test_a_pass_of_the_router_or_the_policy_with_nothing_to_do_imports_no_pandas(
    sqlite_engine, command: list[str]
) -> None:
    done, imported = _imported(command, {**_on(sqlite_engine), **WEBHOOK})
    assert done.stderr == "", done.stderr
    assert not imported & {"pandas", "pyarrow"}, sorted(imported)
