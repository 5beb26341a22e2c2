"""Sealed values at rest (store/sealed.py): AES-256-GCM under a 0600 key file, bound to their place."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ringfence.store.sealed import SealBroken, Sealer


def test_a_sealed_value_opens_in_its_place_and_is_not_readable(tmp_path: Path) -> None:
    sealer = Sealer.in_data_dir(tmp_path, "tokens")
    sealed = sealer.seal("gho_the-access-token", "row 1|access")
    assert sealed.startswith("v1.") and "the-access-token" not in sealed
    assert sealer.open(sealed, "row 1|access") == "gho_the-access-token"
    assert stat.S_IMODE((tmp_path / "tokens.key").stat().st_mode) == 0o600


def test_each_seal_uses_a_fresh_nonce(tmp_path: Path) -> None:
    sealer = Sealer.in_data_dir(tmp_path, "tokens")
    assert sealer.seal("same", "here") != sealer.seal("same", "here")


def test_the_same_key_file_opens_it_in_another_process(tmp_path: Path) -> None:
    sealed = Sealer.in_data_dir(tmp_path, "tokens").seal("value", "here")
    assert Sealer.in_data_dir(tmp_path, "tokens").open(sealed, "here") == "value"


@pytest.mark.parametrize("change", ["another place", "another key", "altered", "not sealed", "truncated"])
def test_a_value_moved_altered_or_under_another_key_does_not_open(tmp_path: Path, change: str) -> None:
    sealer = Sealer.in_data_dir(tmp_path, "tokens")
    sealed, place = sealer.seal("value", "row 1|access"), "row 1|access"
    if change == "another place":
        place = "row 2|access"
    elif change == "another key":
        sealer = Sealer.in_data_dir(tmp_path / "elsewhere", "tokens")
    elif change == "altered":
        sealed = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    elif change == "not sealed":
        sealed = "value"
    else:
        sealed = sealed[:10]
    with pytest.raises(SealBroken):
        sealer.open(sealed, place)
