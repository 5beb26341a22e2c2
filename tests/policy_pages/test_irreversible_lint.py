"""RF009 (issue #17 item 3): a write that reaches outside the user's account must say whether it can be undone
(an error: otherwise it runs unconfirmed); a write named for sending or paying gets a warning. And the texts
derived from ``irreversible=True``: the submission's justifications and the privacy disclosure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ringfence import App, Scope
from ringfence.config import Settings
from ringfence.loader import load_app
from ringfence.privacy.disclosure import disclosure
from ringfence.review.lint import lint_app
from ringfence.review.submission import hint_justifications

HERE = Path(__file__).parent
REPO = HERE.parents[1]
OUTBOX_APP = str(HERE / "apps.py")
UNDECLARED_APP = str(HERE / "undeclared_app.py")


def rf009(name: str, effect: str = "write", open_world: bool = False, irreversible: bool | None = None) -> list:
    app = App("lint", scopes=[Scope("x:write", "Change x")])

    async def fn(to: str) -> str:
        """Does what its name says, for the signed-in user."""
        return "ok"

    declared = {} if irreversible is None else {"irreversible": irreversible}
    app.tool(name=name, effect=effect, scopes=["x:write"], open_world=open_world, **declared)(fn)  # type: ignore[arg-type]
    return [finding for finding in lint_app(app) if finding.code == "RF009"]


def ringfence_lint(target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringfence", "lint", target], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_ringfence_lint_refuses_an_open_world_write_that_does_not_say_whether_it_can_be_undone():
    result = ringfence_lint(UNDECLARED_APP)
    assert result.returncode == 1
    assert ("RF009 send_email: this write reaches outside the user's account (open_world=True) but does not say "
            "whether it can be undone, so it runs without the user's confirmation; declare irreversible=True "
            "(each call is then confirmed by the user, like a destructive tool) or irreversible=False if it can "
            "be undone.") in result.stdout + result.stderr


def test_ringfence_lint_passes_an_app_whose_writes_say_it():
    result = ringfence_lint(OUTBOX_APP)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("name", "open_world", "severity"), [
    ("send_email", True, "error"),
    ("create_payment_link", True, "error"),  # any open-world write, whatever its name
    ("browser_click", True, "error"),
    ("send_email", False, "warning"),
    ("transfer_funds", False, "warning"),
    ("pay_invoice", False, "warning"),
    ("post_message", False, "warning"),
    ("bulk_notify_members", False, "warning"),
])
def test_rf009_a_write_that_does_not_say_whether_it_can_be_undone(name: str, open_world: bool, severity: str):
    [finding] = rf009(name, open_world=open_world)
    assert finding.severity == severity
    assert finding.message.endswith("or irreversible=False if it can be undone.")


@pytest.mark.parametrize(("name", "effect", "open_world", "irreversible"), [
    ("send_email", "write", True, True),
    ("send_email", "write", True, False),
    ("transfer_funds", "write", False, False),
    ("refund_payment", "destructive", True, None),  # destructive: irreversible, confirmed already
    ("web_search", "read", True, None),  # a read changes nothing
    ("postpone_meeting", "write", False, None),  # names that only start like a sending verb
    ("update_email", "write", False, None),
    ("sender_statistics", "write", False, None),
    ("payload_upload", "write", False, None),
    ("share_document", "write", False, None),  # sharing can be withdrawn
    ("save_draft", "write", False, None),
])
def test_rf009_not_for_declared_confirmed_or_ordinary_tools(name: str, effect: str, open_world: bool,
                                                            irreversible: bool | None):
    assert rf009(name, effect, open_world, irreversible) == []


# Texts derived from irreversible=True ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def outbox() -> App:
    return load_app(OUTBOX_APP)


def test_the_submission_justifies_an_irreversible_write_as_confirmed(outbox: App):
    send = hint_justifications(outbox)["tools"]["send_message"]
    assert send["annotations"] == {"readOnlyHint": False, "openWorldHint": True, "destructiveHint": False}
    assert send["justifications"]["destructive_justification"] == (
        'send_message is declared effect="write", not "destructive": it adds or changes data but does not delete '
        "or overwrite it. It is declared irreversible=True: it sends or changes data in a way that cannot be "
        "undone, so ringfence runs each call only after the user confirms that exact call, through ringfence's "
        "confirmation card, the client's confirmation prompt or this app's signed-in confirmation page.")
    assert "in a way that cannot be undone;" in send["justifications"]["read_only_justification"]
    draft = hint_justifications(outbox)["tools"]["save_draft"]["justifications"]["destructive_justification"]
    assert "cannot be undone" not in draft and "confirms" not in draft


def test_the_disclosure_says_which_writes_cannot_be_undone_and_are_confirmed(outbox: App):
    text = disclosure(outbox, Settings.load())
    assert ("| `send_message` | sends or changes data in a way that cannot be undone (you confirm each call), "
            "reaches outside your account | `outbox:send` |") in text
    assert "| `save_draft` | changes data | `outbox:drafts` |" in text
    assert "The app's own privacy policy: <https://outbox.example.com/privacy>" in text
