"""Unit tests never need the network: the package index is a loopback port nothing listens on
(guesses are then added unverified, with a warning), unless a test serves a fake index."""
from __future__ import annotations

import pytest

from jupyter_mlbox.core import index

#: Connection refused at once: "the index could not be reached".
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple/"


@pytest.fixture(autouse=True)
def offline_index(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", UNREACHABLE_INDEX)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", " ")  # blank: no extra index from pip.conf either
    index.clear_cache()
    yield UNREACHABLE_INDEX
    index.clear_cache()
