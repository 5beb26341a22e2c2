"""``ringfence privacy`` and the personal-data declaration it is generated from."""

from __future__ import annotations

from datetime import datetime

import pytest

from ringfence import App, DeclarationError
from tests.support.oauth import ringfence_cli
from tests.support.serve import CONTACTS_APP, REPO

SNAPSHOT = REPO / "examples" / "contacts" / "PRIVACY.md"


def test_reference_app_disclosure_matches_the_checked_in_snapshot() -> None:
    printed = ringfence_cli("privacy", CONTACTS_APP)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == SNAPSHOT.read_text(), "regenerate: ringfence privacy examples/contacts/app.py " \
                                                   "--output examples/contacts/PRIVACY.md"
    assert "| contacts | The contacts you add" in printed.stdout
    assert "`RINGFENCE_RETENTION_AUDIT_PAYLOAD_DAYS`" in printed.stdout
    checked = ringfence_cli("privacy", CONTACTS_APP, "--output", str(SNAPSHOT), "--check")
    assert checked.returncode == 0, checked.stderr


def test_privacy_check_fails_on_a_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stale = tmp_path / "PRIVACY.md"
    stale.write_text("# old\n")
    checked = ringfence_cli("privacy", CONTACTS_APP, "--output", str(stale), "--check")
    assert checked.returncode == 1 and "stale" in checked.stderr
    assert stale.read_text() == "# old\n"


async def _export(subject: str) -> list:
    return []


async def _delete(subject: str) -> int:
    return 0


async def _purge(older_than: datetime) -> int:
    return 0


def _sync_delete(subject: str) -> int:
    return 0


@pytest.mark.parametrize(("arguments", "message"), [
    ({"export": None}, "needs export="),
    ({"delete": _sync_delete}, "needs delete="),
    ({"description": " "}, "needs a description"),
    ({"data_classes": ["medical"]}, "needs data_classes="),
    ({"data_classes": "personal"}, "takes a list"),
    ({"keep_days": 30}, "needs purge="),
    ({"purge": _purge}, "purge= needs keep_days="),
    ({"keep_days": 0, "purge": _purge}, "keep_days= must be"),
])
def test_a_personal_data_declaration_missing_a_hook_or_a_fact_is_refused(arguments: dict, message: str) -> None:
    app = App("notes")
    declaration = {"description": "Notes you write.", "data_classes": ["user_content"], "export": _export,
                   "delete": _delete, **arguments}
    with pytest.raises(DeclarationError, match=message):
        app.personal_data("notes", **declaration)
    assert app.personal_data_declarations == {}


def test_personal_data_is_declared_once() -> None:
    app = App("notes")
    app.personal_data("notes", description="Notes.", data_classes=["user_content"], export=_export, delete=_delete,
                      keep_days=90, purge=_purge)
    with pytest.raises(DeclarationError, match="declared twice"):
        app.personal_data("notes", description="Notes.", data_classes=["user_content"], export=_export,
                          delete=_delete)
    assert app.personal_data_declarations["notes"].retention == "90 days, or until the user deletes it"
