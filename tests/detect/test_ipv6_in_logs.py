"""IPv6 addresses in log lines are redacted in every text form RFC 4291 §2.2 allows (full, leading zeros dropped,
"::" for any run of zero groups, an IPv4 tail, either case), whatever punctuation follows them: a log line writes
"retry 1/3 for 395e:1fb::2ac0: upstream timeout", and the colon after the address used to hide it.
"""

from __future__ import annotations

import ipaddress
import re

from hypothesis import assume, given
from hypothesis import strategies as st

from ringfence.detect.redactor import Finding, Redactor

REDACTOR = Redactor(types=["IP"])
BEFORE = ["retry 1/3 for ", "client=", "from ", "(", "[", "<", '"', "peer ", "ip: ", ""]
AFTER = [": upstream timeout", ":", ",", ")", "]", ".", ";", "!", ">", '"', " ", "", ":\n", ", retrying", ". done",
         "/64"]


@st.composite
def ipv6_forms(draw: st.DrawFn) -> str:
    """One address written one of the ways RFC 4291 §2.2 allows."""
    groups = draw(st.lists(st.one_of(st.just(0), st.integers(0, 0xFFFF)), min_size=8, max_size=8))
    ipv4_tail = draw(st.booleans())
    width = draw(st.sampled_from(["short", "full", "mixed"]))
    upper = draw(st.booleans())

    def hex_group(value: int) -> str:
        padded = width == "full" or (width == "mixed" and draw(st.booleans()))
        written = f"{value:04x}" if padded else f"{value:x}"
        return written.upper() if upper else written

    count = 6 if ipv4_tail else 8
    texts = [hex_group(value) for value in groups[:count]]
    zero_runs = [(start, end) for start in range(count) for end in range(start + 1, count + 1)
                 if all(value == 0 for value in groups[start:end])]
    run = draw(st.sampled_from([None, *zero_runs]))
    if run is None:
        head = ":".join(texts)
    else:
        start, end = run
        head = ":".join(texts[:start]) + "::" + ":".join(texts[end:])
    if ipv4_tail:
        tail = ".".join(str(octet) for octet in ipaddress.IPv4Address(groups[6] << 16 | groups[7]).packed)
        head += tail if head.endswith("::") else ":" + tail
    return head


def personal(written: str) -> bool:
    """What the redactor is meant to find: not loopback or unspecified (they name no one), and not a short
    form such as "1::2" that reads like a path or a slice (patterns.py, ``_ipv6_ok``)."""
    address = ipaddress.IPv6Address(written)
    groups = [group for group in re.split(r"[:.]", written) if group]
    return (not address.is_loopback and not address.is_unspecified
            and len(groups) >= 2 and sum(map(len, groups)) >= 4)


@given(ipv6_forms(), st.sampled_from(BEFORE), st.sampled_from(AFTER))
def test_an_ipv6_address_in_a_log_line_is_found_whatever_follows_it_rfc4291_2_2(written, before, after):
    assume(personal(written))
    line = f"2026-07-01T10:00:00Z WARN {before}{written}{after}"
    start = line.index(written, 26)
    assert Finding("IP", start, start + len(written)) in REDACTOR.find(line), line


def test_the_log_line_from_the_attack_pass_is_redacted():
    line = "retry 1/3 for 395e:1fb:9c3:0:41:7d2e:e1:2ac0: upstream timeout"
    assert REDACTOR.redact(line) == "retry 1/3 for [IP]: upstream timeout"
