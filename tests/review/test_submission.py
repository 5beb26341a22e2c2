"""``ringfence lint --submission`` and ``--justifications FILE``: the Apps SDK tool-hint justifications,
derived from the declarations, and warnings about what ChatGPT's app review requires (RF2xx).
"Incorrect or missing action labels are a common cause of rejection."
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ringfence import App, DeclarationError, Scope
from ringfence.review.submission import SCHEMA, hint_justifications, submission_findings
from ringfence.runtime import annotations_for
from tests.review.test_commands import cli
from tests.review.widget_apps import BENIGN_HTML, notes_app
from tests.support.serve import CONTACTS_APP, REPO

# --- the justifications --------------------------------------------------------------------------------


def test_the_hints_are_exactly_the_served_annotations_for_every_tool(contacts_app):
    document = hint_justifications(contacts_app)
    assert document["$schema"] == SCHEMA and document["schema_version"] == 1
    assert list(document["tools"]) == list(contacts_app.tools)
    for name, entry in document["tools"].items():
        served = annotations_for(contacts_app.tools[name])
        assert entry["annotations"] == {"readOnlyHint": served.read_only_hint,
                                        "openWorldHint": served.open_world_hint,
                                        "destructiveHint": served.destructive_hint}
        assert set(entry["justifications"]) == {"read_only_justification", "open_world_justification",
                                                "destructive_justification"}
        assert all(text.startswith(name) for text in entry["justifications"].values())


def test_each_justification_says_what_the_declaration_says(contacts_app):
    tools = hint_justifications(contacts_app)["tools"]
    search = tools["search_contacts"]["justifications"]
    assert search["read_only_justification"].startswith('search_contacts only reads: it is declared effect="read", '
                                                        "needs scope contacts:read")
    assert "returns contact and personal data" in search["read_only_justification"]
    assert "open_world=False" in search["open_world_justification"]
    delete = tools["delete_contact"]["justifications"]
    assert "deletes or overwrites" in delete["read_only_justification"]
    assert "contacts:write" in delete["read_only_justification"]
    assert "only after the user confirms that exact call" in delete["destructive_justification"]
    assert "does not delete or overwrite" in tools["add_contact"]["justifications"]["destructive_justification"]
    assert "needs no sign-in" in tools["app_info"]["justifications"]["read_only_justification"]


def test_a_page_only_confirmation_and_an_open_world_tool_are_described_as_declared():
    app = App("vault", scopes=[Scope("vault:write", "Change your vault")])

    @app.tool(effect="destructive", scopes=["vault:write"], confirm="page")
    async def destroy_note(note_id: int) -> str:
        """Destroy one note for good."""
        return "gone"

    @app.tool(effect="write", scopes=["vault:write"], open_world=True)
    async def publish_note(note_id: int) -> str:
        """Publish one note on the public web."""
        return "published"

    tools = hint_justifications(app)["tools"]
    assert tools["destroy_note"]["justifications"]["destructive_justification"].endswith(
        "through this app's signed-in confirmation page.")
    assert tools["publish_note"]["annotations"] == {"readOnlyHint": False, "openWorldHint": True,
                                                    "destructiveHint": False}
    assert "open_world=True" in tools["publish_note"]["justifications"]["open_world_justification"]
    assert "untrusted data" in tools["publish_note"]["justifications"]["open_world_justification"]


def test_a_read_tool_that_is_not_idempotent_is_not_said_to_be_safe_to_retry():
    app = App("counter")

    @app.tool(effect="read", idempotent=False)
    async def next_ticket() -> int:
        """Show the next ticket number of the queue."""
        return 1

    justification = hint_justifications(app)["tools"]["next_ticket"]["justifications"]["read_only_justification"]
    assert "no further effect" not in justification


# --- what review requires ------------------------------------------------------------------------------


def codes(app: App) -> list[tuple[str, str]]:
    return sorted((finding.code, finding.tool) for finding in submission_findings(app))


def test_an_app_ready_for_review_has_no_submission_findings():
    assert codes(notes_app()) == []


def test_rf201_a_widget_without_a_domain_is_warned_about_once():
    assert codes(notes_app(domain=None)) == [("RF201", "widget notes")]  # the card follows the widget's domain


def test_rf201_the_confirmation_card_of_an_app_without_widgets_has_no_domain():
    app = App("vault", scopes=[Scope("vault:write", "Change your vault")],
              privacy_policy_url="https://vault.example.com/privacy")

    @app.tool(effect="destructive", scopes=["vault:write"])
    async def destroy_note(note_id: int) -> str:
        """Destroy one note for good."""
        return "gone"

    assert codes(app) == [("RF201", "widget ringfence-confirm")]


def test_rf201_the_confirmation_card_lacks_a_domain_when_widgets_name_different_ones():
    app = notes_app()
    app.widget("summary", html=BENIGN_HTML, description="Shows a summary.", domain="https://summary.example.com",
               connect_domains=["https://api.notes.example.com"], resource_domains=["https://*.notes.example.com"])
    [finding] = submission_findings(app)
    assert (finding.code, finding.tool) == ("RF201", "widget ringfence-confirm")
    assert 'App(widget_domain="https://yourapp.example.com")' in finding.message


def test_rf202_frame_domains_are_warned_about():
    app = notes_app(frame_domains=["https://maps.example.com"], unsafe_allow_frames=True)
    assert codes(app) == [("RF202", "widget notes")]


def test_rf203_an_app_without_a_privacy_policy_url_is_warned_about():
    app = App("bare")

    @app.tool(effect="read")
    async def about() -> str:
        """Say what this app does."""
        return "bare"

    assert codes(app) == [("RF203", "app bare")]


def test_rf204_a_read_tool_declared_not_idempotent_is_warned_about_at_its_source():
    app = App("counter", privacy_policy_url="https://counter.example.com/privacy")

    @app.tool(effect="read", idempotent=False)
    async def next_ticket() -> int:
        """Show the next ticket number of the queue."""
        return 1

    [finding] = submission_findings(app)
    assert (finding.code, finding.tool, finding.file) == ("RF204", "next_ticket", __file__)


def test_a_privacy_policy_url_must_be_https():
    with pytest.raises(DeclarationError, match="https URL"):
        App("notes", privacy_policy_url="http://notes.example.com/privacy")


def test_the_resource_metadata_names_the_served_privacy_disclosure(contacts):
    import httpx

    document = httpx.get(contacts.metadata_url).json()
    assert document["resource_policy_uri"] == f"{contacts.base_url}/privacy"  # RFC 9728 §2
    # the disclosure page links the author's own policy
    assert '<a href="https://contacts.example.com/privacy">' in httpx.get(document["resource_policy_uri"]).text


# --- the command ---------------------------------------------------------------------------------------


def ringfence_lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringfence", "lint", CONTACTS_APP, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_the_command_writes_valid_justifications_for_the_reference_app(tmp_path: Path, contacts_app):
    target = tmp_path / "tool-hint-justifications.json"
    result = ringfence_lint("--justifications", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and f"wrote {target}" in result.stderr
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document == hint_justifications(contacts_app)
    assert set(document["tools"]) == set(contacts_app.tools)
    for name, tool in contacts_app.tools.items():
        hints = annotations_for(tool)
        entry = document["tools"][name]
        assert entry["annotations"] == {"readOnlyHint": hints.read_only_hint, "openWorldHint": hints.open_world_hint,
                                        "destructiveHint": hints.destructive_hint}
        assert all(scope in entry["justifications"]["read_only_justification"] for scope in tool.scopes)


def test_the_command_fails_with_2_when_the_justifications_cannot_be_written(tmp_path: Path):
    result = ringfence_lint("--justifications", str(tmp_path / "missing" / "hints.json"))
    assert result.returncode == 2 and "cannot write" in result.stderr


def test_submission_warnings_appear_only_when_asked_for_and_keep_exit_0():
    plain = CliRunner().invoke(cli, ["lint", "tests.review.widget_apps:benign"])
    assert (plain.exit_code, plain.stdout) == (0, "")
    app_module = "tests.review.test_submission:unsubmittable"
    asked = CliRunner().invoke(cli, ["lint", app_module, "--submission", "--format", "json"])
    assert asked.exit_code == 0
    assert sorted(finding["code"] for finding in json.loads(asked.stdout)) == ["RF201", "RF203"]
    assert all(finding["severity"] == "warning" for finding in json.loads(asked.stdout))
    strict = CliRunner().invoke(cli, ["lint", app_module, "--submission", "--strict", "--ignore", "RF201"])
    assert strict.exit_code == 1 and "RF203 app notes: warning:" in strict.stdout and "RF201" not in strict.stdout


unsubmittable = notes_app(domain=None)
unsubmittable.privacy_policy_url = None
