"""The JSON document agrees with its published schema, on a run with every kind of result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from portcall.tls.facts import LegacyCause
from portcall.verdicts import FindingCode, Health, Severity, Verdict

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "docs" / "portcall.check-1.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_demo_check_document_follows_the_schema(
    validator: jsonschema.Draft202012Validator,
) -> None:
    # The demo's check holds ok rows with TLS facts, findings, refusals and a wrong protocol.
    done = subprocess.run(
        [sys.executable, "-m", "portcall", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document = json.loads(done.stdout)["check"]
    errors = sorted(validator.iter_errors(document), key=str)
    assert errors == []
    verdicts = {r["verdict"] for r in document["results"]}
    assert {"ok", "refused", "no-starttls", "wrong-protocol"} <= verdicts
    expired = next(r for r in document["results"] if r["key"] == "imaps")
    assert expired["tls"]["certificate"]["days_left"] < 0


def test_the_schema_rejects_a_document_that_breaks_it(
    validator: jsonschema.Draft202012Validator,
) -> None:
    broken = {
        "schema": "portcall.check/1",
        "portcall": "0",
        "catalog": "x",
        "started": "",
        "finished": "",
        "health": "fine",
        "results": [],
    }
    assert [e.path[-1] for e in validator.iter_errors(broken)] == ["health"]


def test_the_schema_enums_are_the_vocabulary_of_verdicts_py() -> None:
    # One vocabulary: a verdict, finding or health added to verdicts.py must reach the schema.
    defs = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["$defs"]
    assert defs["verdict"]["enum"] == [str(v) for v in Verdict]
    assert defs["finding"]["properties"]["code"]["enum"] == [str(c) for c in FindingCode]
    assert defs["finding"]["properties"]["severity"]["enum"] == [str(s) for s in Severity]
    assert defs["health"]["enum"] == [str(h) for h in Health]
    assert defs["legacy_cause"]["enum"] == [str(c) for c in LegacyCause]
