"""The public surface stays what ``tests/public_surface.json`` says: every public module's
``__all__`` and signatures, the command line's options, the entry points, and what a pickle of
each public value names. A change to any of them shows here; one made on purpose is written
back with ``python tests/support/surface.py > tests/public_surface.json``."""

from __future__ import annotations

import json
from pathlib import Path

from support.surface import surface

SNAPSHOT = Path(__file__).with_name("public_surface.json")


def test_the_public_surface_is_the_recorded_one() -> None:
    now = json.loads(json.dumps(surface()))  # as the file holds it: lists, string keys
    assert now == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_every_public_value_survives_a_pickle() -> None:
    pickles = surface()["pickles"]
    assert pickles, "no samples"
    assert all(entry.get("round trip") is True for entry in pickles.values()), pickles
