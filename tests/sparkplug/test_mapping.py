"""The Sparkplug map refuses ids that no Sparkplug topic can carry, naming the entry (no broker needed)."""

from __future__ import annotations

import copy

import pytest

from ingest.sparkplug.mapping import MapError, Mapping
from tests.ingest.support import REPO
from tests.sparkplug.support import DEVICE, GROUP, MAP, NODE

NOT_AN_ID = "must be non-empty, without / + #"


def with_second(**ids) -> dict:
    """The test map with a second entry (machines[1]) whose ids are these."""
    the_map = copy.deepcopy(MAP)
    second = {"group": "plant2", "edge_node": "line1", "tenant": "acme", "machine": "m-001", **ids}
    the_map["machines"].append(second)
    return the_map


@pytest.mark.parametrize("field", ["group", "edge_node", "device"])
@pytest.mark.parametrize("bad", ["a/b", "a+b", "a#", "/", "#"])
def test_a_bad_sparkplug_id_is_refused_naming_the_entry(field, bad):
    # Without the check these loaded. With / + # (which Sparkplug reserves) no topic carries the id, so the
    # machine's messages never mapped.
    with pytest.raises(MapError) as caught:
        Mapping.from_dict(with_second(**{field: bad}), where="map.yaml")
    assert str(caught.value) == f"map.yaml: machines[1]: {field}: Sparkplug id {bad!r} {NOT_AN_ID}"


def test_an_empty_device_is_refused():
    # An empty group or edge node was refused already ("lacks"); an empty device made a key no topic has.
    with pytest.raises(MapError, match=r"^map: machines\[1\]: device: Sparkplug id '' must be non-empty"):
        Mapping.from_dict(with_second(device=""))


@pytest.mark.parametrize("field", ["group", "edge_node"])
def test_an_id_longer_than_the_node_states_key_is_refused(field):
    # The host quarantines every message of such a node (sparkplug_bad_topic), so it could never map.
    with pytest.raises(MapError) as caught:
        Mapping.from_dict(with_second(**{field: "x" * 129}))
    assert str(caught.value).startswith(f"map: machines[1]: {field}: 129 characters, more than 128")


def test_good_ids_still_load():
    longest = "x" * 128
    loaded = Mapping.from_dict(with_second(group=longest, edge_node="Presse-é_1.2", device="d" * 300))
    assert loaded.target(GROUP, NODE, DEVICE).machine == "m-000"
    assert loaded.target(longest, "Presse-é_1.2", "d" * 300).machine == "m-001"
    example = Mapping.load(REPO / "docs" / "examples" / "sparkplug-map.yaml")
    assert example.target("plant1", "line4", "press-7") is not None


def test_ids_with_spaces_and_colons_that_sparkplug_allows_still_load():
    # They travel in topics (Mosquitto delivers spBv1.0/Edge Group/NBIRTH/a:b): maps using them kept working.
    loaded = Mapping.from_dict(with_second(group="Edge Group", edge_node="a:b", device="Edge Device 1"))
    assert loaded.target("Edge Group", "a:b", "Edge Device 1").machine == "m-001"


def test_a_device_that_yaml_reads_as_a_number_maps_by_its_text():
    # `device: 7` was kept as the int 7, which no topic's device (text) ever equals.
    loaded = Mapping.from_dict(with_second(device=7))
    assert loaded.target("plant2", "line1", "7").machine == "m-001"
