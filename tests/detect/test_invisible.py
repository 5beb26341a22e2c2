"""The characters that hide text come from Unicode properties (Default_Ignorable_Code_Point, Bidi_Control), read
from the Unicode Character Database of Python's own version and committed as ringfence/detect/unicode_tables.py.
"""

from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from ringfence.detect import invisible, unicode_tables
from ringfence.detect.normalize import fold, hidden_runs

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "unicode-tables"


def code_points(ranges: tuple[tuple[int, int], ...]) -> set[str]:
    return {chr(code) for start, end in ranges for code in range(start, end + 1)}


IGNORABLE = code_points(unicode_tables.DEFAULT_IGNORABLE)
# DerivedCoreProperties.txt: Default_Ignorable_Code_Point = Other_DICP + Cf + Variation_Selector - White_Space
# - FFF9..FFFB (interlinear annotation) - 13430..1343F (Egyptian format controls) - Prepended_Concatenation_Mark.
VISIBLE_FORMAT = {chr(c) for c in (*range(0xFFF9, 0xFFFC), *range(0x13430, 0x13440), *range(0x0600, 0x0606),
                                   0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD)}


def test_the_tables_are_of_pythons_unicode_version():
    assert unicode_tables.UNICODE_VERSION == unicodedata.unidata_version


def test_the_committed_tables_are_what_the_script_makes_from_the_ucd():
    perl = subprocess.run(["perl", "-MUnicode::UCD", "-e", "print Unicode::UCD::UnicodeVersion()"],
                          capture_output=True, text=True, check=False)
    if perl.returncode != 0 or perl.stdout != unicodedata.unidata_version:
        pytest.skip(f"no perl Unicode::UCD of Unicode {unicodedata.unidata_version} here")
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_script_reads_the_ucd_files_too(tmp_path: Path):
    version = unicodedata.unidata_version
    (tmp_path / "emoji").mkdir()
    (tmp_path / "DerivedCoreProperties.txt").write_text(
        f"# DerivedCoreProperties-{version}.txt\n00AD          ; Default_Ignorable_Code_Point # Cf SOFT HYPHEN\n"
        "200B..200F    ; Default_Ignorable_Code_Point\n2010 ; Math # not this one\n")
    (tmp_path / "PropList.txt").write_text(
        f"# PropList-{version}.txt\n061C ; Bidi_Control\nFE00..FE0F ; Variation_Selector\n")
    (tmp_path / "emoji" / "emoji-data.txt").write_text(
        f"# emoji-data-{version}.txt\n2764 ; Extended_Pictographic\n1F3FB..1F3FF ; Emoji_Modifier\n")
    output = tmp_path / "tables.py"
    done = subprocess.run([sys.executable, str(SCRIPT), "--ucd", str(tmp_path), "--output", str(output)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    tables: dict = {}
    exec(output.read_text(), tables)  # noqa: S102 - the module the script just wrote
    assert tables["DEFAULT_IGNORABLE"] == ((0x00AD, 0x00AD), (0x200B, 0x200F))
    assert tables["BIDI_CONTROL"] == ((0x061C, 0x061C),)
    assert tables["EMOJI_MODIFIER"] == ((0x1F3FB, 0x1F3FF),)


def test_the_ignorable_table_holds_what_the_property_is_derived_from():
    """Every invisible format character (Cf), every variation selector and bidi control; no white space."""
    format_characters = {chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"}
    assert format_characters - VISIBLE_FORMAT <= IGNORABLE
    assert code_points(unicode_tables.VARIATION_SELECTOR) <= IGNORABLE
    assert code_points(unicode_tables.BIDI_CONTROL) <= IGNORABLE
    assert not any(char.isspace() for char in IGNORABLE)


def test_every_default_ignorable_code_point_hides_text_and_is_folded_away():
    for char in sorted(IGNORABLE):
        text = f"pass{char}word"
        assert invisible.hides_text(text), f"U+{ord(char):04X}"
        assert invisible.without_hiding_characters(text) == "password"
        assert fold(text).text == "password", f"U+{ord(char):04X}"
        assert hidden_runs(text), f"U+{ord(char):04X}"


@pytest.mark.parametrize("char", ["\u061c", "\u00ad", "\u180e", "\u034f", "\u3164", "\ufe0f"])
def test_the_characters_an_attack_pass_got_through_hide_text(char):
    assert invisible.hides_text(f"Ada{char}Lovelace")
    assert invisible.hides_text(char)


def test_bidi_controls_are_reported_as_bidi():
    assert {invisible.kind(char) for char in code_points(unicode_tables.BIDI_CONTROL)} == {"bidi"}
    assert [run.kind for run in hidden_runs("abc \u061cexe")] == ["bidi"]


@pytest.mark.parametrize("text", ["\u2764\ufe0f", "\u263a\ufe0e", "\U0001f469\u200d\U0001f4bb", "1\ufe0f\u20e3",
                                  "\U0001f44d\U0001f3fd\u200d\U0001f4bb", "\u2764\ufe0f\u200d\U0001f525",
                                  "tab\tnewline\n"])
def test_emoji_sequences_and_ordinary_white_space_hide_nothing(text):
    assert not invisible.hides_text(text)
    assert invisible.without_hiding_characters(text) == text


@pytest.mark.parametrize("text", ["\ufe0f", "a\ufe0f", "\u200d\U0001f4bb", "a\u200d\U0001f4bb", "\U0001f4bb\u200d",
                                  "1\ufe0f", "esc\x1b", "\x85next line"])
def test_a_selector_or_joiner_outside_an_emoji_hides_text(text):
    assert invisible.hides_text(text)
