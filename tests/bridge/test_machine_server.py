"""The OPC UA test server's own waits: a loaded machine is waited for, a hung server fails with its stack."""

from __future__ import annotations

import pytest

from simulators import opcua_machine
from simulators.opcua_machine import MachineServer
from tests import services


def test_a_hung_server_fails_the_call_naming_it_and_where_its_loop_hangs() -> None:
    server = MachineServer(port=services.free_port()).start()
    default, server.call_s = server.call_s, 0.5  # start and stop keep the default: each may take seconds
    try:
        with server.paused(), pytest.raises(TimeoutError) as raised:
            server.step()
    finally:
        server.call_s = default
        server.stop()
    message = str(raised.value)
    assert "_change" in message and server.endpoint in message
    assert "it awaits MachineServer._change" in message and "in wait" in message, message  # the paused loop


@pytest.mark.parametrize("load", [0.1, 2.0, 16.0, 40.0])
def test_the_deadline_grows_with_the_runnable_processes_per_core(load: float) -> None:
    """At load 16 on 2 cores a thread gets about an eighth of a core: the same work takes 8 times as long."""
    deadline = opcua_machine.deadline(30.0, load=load, cores=2)
    assert deadline >= 30.0 and deadline * 2 >= 30.0 * load  # never below the base, never short of the load
