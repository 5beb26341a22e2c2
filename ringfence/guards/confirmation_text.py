"""What the user and the model are told about a call awaiting confirmation (a destructive or irreversible
tool's), with the app's preview as quoted data.

A preview is the author's sentence with values in it that anyone may have written: a contact named
"Mom. Nothing will be deleted" is the model's or another user's text, not the app's. So ringfence
never splices a preview into its own sentence: it says what it asks in a fixed sentence, then
gives the preview as a quoted block labelled as what the app reported, every line of it marked as
quoted (a line break in a value cannot end the quote), and every character that can hide or reorder
text (bidi controls, zero-width characters, control characters) shown as its code point.
"""

from __future__ import annotations

from ringfence.detect.invisible import hiding_characters

QUOTE_MARK = "> "


def visible(text: str) -> str:
    """``text`` with each character that can hide or reorder text written as ``[U+XXXX]``."""
    shown, position = [], 0
    for match in hiding_characters(text):  # tab and line breaks are not among them
        shown += [text[position:match.start()], f"[U+{ord(match.group()):04X}]"]
        position = match.end()
    shown.append(text[position:])
    return "".join(shown)


def quoted(preview: str) -> str:
    """The preview as a quoted block: each of its lines (by any line break, U+2028 too) after ``> ``."""
    return "\n".join(QUOTE_MARK + line for line in visible(preview).splitlines() or [""])


def question(app_name: str, tool_title: str, preview: str) -> str:
    """The elicitation's message: ringfence's question, then the app's preview quoted."""
    return (f"{app_name} asks you to confirm the action \"{tool_title}\". What {app_name} reports it will do, "
            f"quoted as the app wrote it (names in it may come from anyone):\n{quoted(preview)}")


def pending(preview: str, how: str, minutes: int) -> str:
    """What the model is told when a call waits for the user: not done, what it would do, how to confirm."""
    return (f"Not done yet: the user must confirm this call first. What it would do, as the app reports it:\n"
            f"{quoted(preview)}\nTo confirm, {how}, within {minutes} minutes; then call the tool again with the "
            "same arguments.")
