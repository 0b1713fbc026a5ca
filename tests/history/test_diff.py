"""diff_documents on real check documents: each kind of change, and no change where only the
clock moved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from portcall.history.diff import Change, banner_shape, diff_documents
from portcall.history.render import change_line
from portcall.verdicts import FindingCode, Result, Verdict
from tests.history.documents import HOST, START, document, result

LATER = START + timedelta(days=1)
END = datetime(2027, 3, 1, tzinfo=UTC)
SMTP_BANNER = "220 mail Microsoft ESMTP MAIL Service, Version: 6.0.3790.3959 ready at  {}"


def run(at: datetime = START, **changed: Result) -> dict[str, Any]:
    """A run of four ports; `changed` replaces the result of a key (or adds one)."""
    stamp = at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    results = {
        "smtp": result(25, "smtp", banner=SMTP_BANNER.format(stamp), product="Exchange 2003"),
        "smtps": result(465, "smtps", certificate=("0A", END)),
        "imaps": result(993, "imaps", certificate=("0A", END)),
        "nntp": result(119, "nntp", Verdict.REFUSED),
    }
    results.update(changed)
    return document(list(results.values()), at=at)


def kinds(changes: list[Change]) -> list[tuple[str, int, str]]:
    return [(c.key, c.port, c.kind) for c in changes]


def test_the_same_servers_a_day_later_are_no_change() -> None:
    assert diff_documents(run(), run(LATER)) == []


def test_verdict_change() -> None:
    (change,) = diff_documents(run(), run(LATER, nntp=result(119, "nntp")))
    assert (change.kind, change.old, change.new) == ("verdict", "refused", "ok")
    assert change_line(change) == f"{HOST} 119 (nntp) verdict: refused -> ok"


def test_findings_added_and_removed_by_code() -> None:
    old = run(
        imaps=result(
            993, "imaps", certificate=("0A", END), findings=(FindingCode.CERT_SELF_SIGNED,)
        )
    )
    new = run(
        LATER,
        imaps=result(
            993,
            "imaps",
            certificate=("0A", END),
            findings=(FindingCode.CERT_UNTRUSTED, FindingCode.CERT_NAME_MISMATCH),
        ),
    )
    changes = diff_documents(old, new)
    assert [(c.kind, c.old, c.new) for c in changes] == [
        ("finding-added", None, "cert-name-mismatch"),
        ("finding-added", None, "cert-untrusted"),
        ("finding-removed", "cert-self-signed", None),
    ]


def test_a_renewed_certificate() -> None:
    new = run(LATER, smtps=result(465, "smtps", certificate=("0B", END + timedelta(days=365))))
    (change,) = diff_documents(run(), new)
    assert (change.kind, change.note, change.old, change.new) == (
        "certificate",
        "renewed",
        "0A",
        "0B",
    )
    assert change.old_not_after == END.isoformat()
    assert change_line(change) == (
        f"{HOST} 465 (smtps) certificate renewed: serial 0A -> 0B, not after "
        f"{END.isoformat()} -> {(END + timedelta(days=365)).isoformat()}"
    )


def test_a_replaced_certificate_that_ends_sooner_and_one_that_went_away() -> None:
    new = run(
        LATER,
        smtps=result(465, "smtps", certificate=("0C", END - timedelta(days=10))),
        imaps=result(993, "imaps", Verdict.TLS_FAILED),
    )
    changes = diff_documents(run(), new)
    assert [(c.key, c.kind, c.note) for c in changes] == [
        ("smtps", "certificate", "replaced"),
        ("imaps", "verdict", ""),
        ("imaps", "certificate", "removed"),
    ]


def test_a_certificate_coming_close_to_its_end_is_expiring_once() -> None:
    near = START + timedelta(days=40)
    old = run(smtps=result(465, "smtps", certificate=("0A", near)))
    new = run(START + timedelta(days=20), smtps=result(465, "smtps", certificate=("0A", near)))
    (change,) = diff_documents(old, new)
    assert (change.kind, change.old, change.new) == (
        "cert-expiring",
        "40 days left",
        "20 days left",
    )
    assert diff_documents(old, new, expiring_days=10) == []
    # When the check itself added its cert-expiring finding, that is the one line said.
    flagged = run(
        START + timedelta(days=20),
        smtps=result(465, "smtps", certificate=("0A", near), findings=(FindingCode.CERT_EXPIRING,)),
    )
    assert kinds(diff_documents(old, flagged)) == [("smtps", 465, "finding-added")]


def test_banner_and_product_changes_but_not_the_greeting_clock() -> None:
    upgraded = "220 mail Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 ready at  Tue"
    new = run(LATER, smtp=result(25, "smtp", banner=upgraded, product="Exchange 2003 SP2"))
    changes = diff_documents(run(), new)
    assert kinds(changes) == [("smtp", 25, "product"), ("smtp", 25, "banner")]
    assert banner_shape("+OK ready <1896.697170952@dbc.mtview.ca.us>") == "+OK ready <stamp>"
    assert banner_shape("* OK 2026-01-05T09:00:00Z up") == banner_shape("* OK 2026-02-05 10:11 up")


def test_ports_appearing_and_disappearing() -> None:
    new = run(LATER, nntp=result(563, "nntps"))  # 119 no longer checked, 563 now
    assert kinds(diff_documents(run(), new)) == [
        ("nntps", 563, "appeared"),
        ("nntp", 119, "disappeared"),
    ]
    (change,) = diff_documents(run(), new)[:1]
    assert change_line(change) == f"{HOST} 563 (nntps) appeared: ok"


def test_an_address_change_and_a_host_on_two_addresses() -> None:
    moved = run(LATER, nntp=result(119, "nntp", Verdict.REFUSED, address="192.0.2.99"))
    (change,) = diff_documents(run(), moved)
    assert (change.kind, change.old, change.new) == ("address", "192.0.2.10", "192.0.2.99")
    two = [result(25, "smtp", address=a) for a in ("192.0.2.1", "2001:db8::1")]
    later = [
        result(25, "smtp", address="192.0.2.1"),
        result(25, "smtp", Verdict.FILTERED, address="2001:db8::1"),
    ]
    (change,) = diff_documents(document(two), document(later))
    assert (change.address, change.kind, change.new) == ("2001:db8::1", "verdict", "filtered")


def test_untrusted_documents_never_raise() -> None:
    junk: list[Any] = [
        {},
        {"results": "x"},
        {
            "results": [
                1,
                None,
                {"host": 5, "port": 25},
                {"host": "h", "port": 25, "tls": 3, "findings": [1, {"code": None}]},
            ]
        },
        {"finished": "not a date", "results": [{"host": "h", "port": 25, "banner": ["x"]}]},
    ]
    for old in junk:
        for new in junk:
            diff_documents(old, new)
    (change,) = diff_documents(junk[0], junk[2])
    assert (change.host, change.kind) == ("h", "appeared")


def test_peer_text_in_a_change_line_is_inert() -> None:
    new = run(LATER)
    # Raw, as a document from elsewhere may hold it: not made inert by json_report.
    new["results"][0]["banner"] = "220 \x1b[2J\x1b[31mok\u202e"
    (change,) = diff_documents(run(), new)
    line = change_line(change)
    assert "\x1b" not in line and "\u202e" not in line
    assert line.endswith('-> "220 \\x1b[2J\\x1b[31mok\\u202e"')
