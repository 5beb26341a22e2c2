"""The ``ringfence redact`` and ``ringfence detect`` commands: stdin to stdout filters.

Plain functions with Typer annotations; ``ringfence.cli`` registers them with ``cli.command()``.

Exit codes:
  redact  0 done; 1 some ``--jsonl`` lines were not JSON (they were redacted as plain text and
          named on stderr, never echoed as they came); 2 bad options (e.g. no hash key).
  detect  0 no injection; 1 an injection was found; 2 some input could not be scanned and nothing
          was found in the rest (a gate fails closed).
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ringfence.cli.options import fail as _fail

if TYPE_CHECKING:  # the detectors are imported by the command that runs, so `--help` starts at once
    from ringfence.detect.redactor import Redactor

DEFAULT_KEY_ENV = "RINGFENCE_REDACTION_KEY"



def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _build_redactor(replacement: str, hash_key_env: str) -> Redactor:
    from ringfence.detect.redactor import MIN_HASH_KEY_BYTES, Redactor

    if replacement not in ("tag", "hash"):
        _fail(f"--replacement must be 'tag' or 'hash', not {replacement!r}")
    if replacement == "tag":
        return Redactor()
    key = os.environ.get(hash_key_env, "").encode()
    if len(key) < MIN_HASH_KEY_BYTES:
        _fail(
            f"--replacement hash needs a secret key of at least {MIN_HASH_KEY_BYTES} bytes in ${hash_key_env} "
            "(for example the output of `openssl rand -hex 32`); there is no default key"
        )
    return Redactor(replacement="hash", hash_key=key)


def redact(
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Each line is a JSON value: redact every string in it (keys are kept).")
    ] = False,
    report: Annotated[
        bool,
        typer.Option("--report", help="Print findings as JSON lines ({line, type, start, end}) instead of text."),
    ] = False,
    replacement: Annotated[
        str, typer.Option("--replacement", help="tag ([EMAIL]) or hash ([EMAIL:3f9a1c2b], keyed HMAC-SHA256).")
    ] = "tag",
    hash_key_env: Annotated[
        str, typer.Option("--hash-key-env", help="Environment variable that holds the key for --replacement hash.")
    ] = DEFAULT_KEY_ENV,
) -> None:
    """Redact personal data and secrets from stdin, line by line, to stdout."""
    redactor = _build_redactor(replacement, hash_key_env)
    out = sys.stdout
    invalid = 0
    if not jsonl:
        for number, (body, newline, findings) in enumerate(redactor.find_lines(sys.stdin), start=1):
            if report:
                for finding in findings:
                    out.write(_dumps({"line": number, "type": finding.type, "start": finding.start,
                                      "end": finding.end}) + "\n")  # fmt: skip
            else:
                out.write(redactor.replace(body, findings) + newline)
            out.flush()
        return
    for number, line in enumerate(sys.stdin, start=1):
        body = line.rstrip("\r\n")
        if not body.strip():
            if not report:
                out.write(line)
            continue
        try:
            value = json.loads(body)
        except ValueError as exc:
            invalid += 1
            typer.echo(f"ringfence: line {number}: not JSON ({exc.msg}); redacted as plain text", err=True)
            if report:
                for finding in redactor.find(body):
                    out.write(_dumps({"line": number, "type": finding.type, "start": finding.start,
                                      "end": finding.end}) + "\n")  # fmt: skip
            else:
                out.write(redactor.redact(body) + "\n")
            out.flush()
            continue
        if report:
            for path, finding in redactor.find_value(value):
                out.write(_dumps({"line": number, "path": path, "type": finding.type, "start": finding.start,
                                  "end": finding.end}) + "\n")  # fmt: skip
        else:
            out.write(_dumps(redactor.redact_value(value)) + "\n")
        out.flush()
    if invalid:
        raise typer.Exit(1)


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return value["text"]
    return None


def detect(
    jsonl: Annotated[
        bool,
        typer.Option("--jsonl", help='Each line is a JSON string or an object with a "text" field; one verdict each.'),
    ] = False,
) -> None:
    """Scan stdin for prompt injection; print the verdict as JSON; exit 1 when an injection is found."""
    from ringfence.detect.injection import InjectionDetector

    detector = InjectionDetector()
    if not jsonl:
        verdict = detector.scan(sys.stdin.read())
        typer.echo(_dumps(verdict.to_dict()))
        raise typer.Exit(1 if verdict.is_injection else 0)
    found = unusable = False
    for number, line in enumerate(sys.stdin, start=1):
        body = line.strip()
        if not body:
            continue
        try:
            text = _text_of(json.loads(body))
        except ValueError:
            text = None
        if text is None:
            unusable = True
            typer.echo(_dumps({"line": number, "error": 'expected a JSON string or an object with a "text" string'}))
            continue
        verdict = detector.scan(text)
        found = found or verdict.is_injection
        typer.echo(_dumps({"line": number, **verdict.to_dict()}))
    raise typer.Exit(1 if found else 2 if unusable else 0)
