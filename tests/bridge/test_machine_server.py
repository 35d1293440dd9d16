"""The OPC UA test server's own waits: a loaded machine is waited for, a hung server fails with its stack."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua
from asyncua.server.standard_address_space import standard_address_space

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


async def _objects_and_serial(endpoint: str) -> tuple[list[str], str]:
    """The browse names in a server's Objects folder and its press's serial number, as a client reads them."""
    async with Client(endpoint) as client:
        names = [(await node.read_browse_name()).Name for node in await client.nodes.objects.get_children()]
        ns = await client.get_namespace_index(opcua_machine.NAMESPACE)
        return names, await client.get_node(ua.NodeId("Press7.Identification.SerialNumber", ns)).read_value()


def test_servers_after_the_second_copy_the_standard_address_space_and_keep_their_nodes_apart(monkeypatch):
    """asyncua builds its ~6,000 standard nodes in ~1.7 CPU-s a server; from a process's third server on, a
    copy of the second's, pickled before it added its own, takes its place (~0.7). Each copy is its own."""
    fill, builds, before = standard_address_space.fill_address_space, [], opcua_machine.STANDARD_NODES.builds

    def counted(*args):  # noqa: ANN002, ANN202
        builds.append(args)
        return fill(*args)

    monkeypatch.setattr(standard_address_space, "fill_address_space", counted)
    servers: list[MachineServer] = []
    try:
        for serial in ("SN-1", "SN-2", "SN-3"):
            servers.append(MachineServer(port=services.free_port(), serial=serial).start())
        assert len(builds) == max(0, 2 - before)  # none once the process has built them twice
        third = servers[2]
        third._call(third.server.nodes.objects.add_folder(ua.NodeId("OnlyHere", 2), "OnlyHere"))
        seen = [asyncio.run(_objects_and_serial(server.endpoint)) for server in servers]
        assert [serial for _, serial in seen] == ["SN-1", "SN-2", "SN-3"]
        assert [names.count("Machines") for names, _ in seen] == [1, 1, 1]
        assert ["OnlyHere" in names for names, _ in seen] == [False, False, True]
    finally:
        for server in servers:
            server.stop()
