"""A stored assessment is decided on before its write waits for the writers' turn:
whether a model's result needs storing again is checked again inside the write, so a
request whose evidence equals the newest stored assessment it read still leaves its own
result newest when another request stored a different one in between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from service.auth import Principal
from service.config import ServiceConfig
from service.routers.assess import _assessed
from service.state import ServiceState

REPO = Path(__file__).resolve().parents[1]
MODEL = "tidewater-mako-2"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServiceState]:
    opened = ServiceState.open(ServiceConfig(f"sqlite:///{tmp_path / 'asl.db'}",
                                             rate_limit=None))
    yield opened
    opened.close()


def bodies() -> tuple[bytes, bytes]:
    """The example model's evidence, and the same with its compute a little higher."""
    text = (REPO / "examples" / "asl2-comprehensive-all-clear.yaml").read_text()
    changed = yaml.safe_load(text)
    changed["model"]["effective_compute_flop"] = 8.1e25
    return text.encode(), yaml.safe_dump(changed).encode()


def newest_input(state: ServiceState) -> str:
    return state.store.latest([MODEL])[MODEL].input_hash


def test_an_unchanged_result_is_stored_after_all_when_another_came_in_between(
        state: ServiceState) -> None:
    who = Principal("t", "t", "analyst-person", "analyst")
    first, second = bodies()
    _assessed(state, who, first, "yaml", True).commit()
    stored_first = newest_input(state)
    # decided on: its model's newest assessment is this very evidence, not stored again
    again = _assessed(state, who, first, "yaml", True)
    assert again.new == [] and len(again.unchanged) == 1
    _assessed(state, who, second, "yaml", True).commit()  # another request, meanwhile
    assert newest_input(state) != stored_first
    again.commit()
    assert newest_input(state) == stored_first  # the later request's evidence is newest
    history = state.store.history(MODEL)
    assert [h.input_hash == stored_first for h in history] == [True, False, True]


def test_an_unchanged_result_is_not_stored_again(state: ServiceState) -> None:
    who = Principal("t", "t", "analyst-person", "analyst")
    first, _ = bodies()
    _assessed(state, who, first, "yaml", True).commit()
    _assessed(state, who, first, "yaml", True).commit()
    assert len(state.store.history(MODEL)) == 1
