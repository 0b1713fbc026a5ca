"""Time `portcall check` of the 17 catalog ports against `nmap -sV` with its NSE scripts.

Both run against the same healthy lab (OpenLDAP, Dovecot, Postfix, INN, nginx and, on 691, a
portcall routing responder) inside a network namespace this script creates, in one run, and
the table goes into bench/RESULTS.md. Run as root:
`.venv/bin/python bench/check_vs_nmap.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.interop.lab.daemons.dovecot import Dovecot  # noqa: E402
from tests.interop.lab.daemons.inn import Inn  # noqa: E402
from tests.interop.lab.daemons.nginx import Nginx  # noqa: E402
from tests.interop.lab.daemons.postfix import Postfix  # noqa: E402
from tests.interop.lab.daemons.responder import Responder  # noqa: E402
from tests.interop.lab.daemons.slapd import Slapd  # noqa: E402
from tests.interop.lab.lab import Lab  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from results import write_section  # noqa: E402

HOST = "mail.lab.test"
PORTS = "389,636,379,390,3268,3269,143,993,110,995,119,563,80,443,25,465,691"
NMAP_SCRIPTS = "ssl-cert,ldap-rootdse,smtp-commands,imap-capabilities,pop3-capabilities"


@dataclass
class Timing:
    name: str
    seconds: list[float]
    summary: str

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def timed(lab: Lab, argv: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = lab.run(argv, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


def run_portcall(lab: Lab, runs: int) -> Timing:
    argv = [sys.executable, "-m", "portcall", "check", HOST, "--ca", str(lab.pki.ca_cert)]
    argv += ["--json"]
    seconds, output = [], ""
    for _ in range(runs):
        elapsed, output = timed(lab, argv)
        seconds.append(elapsed)
    verdicts = [r["verdict"] for r in json.loads(output)["results"]]
    ok = verdicts.count("ok")
    return Timing("portcall check", seconds, f"{ok}/{len(verdicts)} ok, products and TLS judged")


def run_nmap(lab: Lab, runs: int) -> Timing:
    argv = ["nmap", "-Pn", "-n", "-sT", "-sV", "-p", PORTS, "--script", NMAP_SCRIPTS, "127.0.0.1"]
    seconds, output = [], ""
    for _ in range(runs):
        elapsed, output = timed(lab, argv)
        seconds.append(elapsed)
    open_ports = sum(1 for line in output.splitlines() if "/tcp" in line and " open " in line)
    return Timing("nmap -sV + 5 NSE scripts", seconds, f"{open_ports} ports open, versions probed")


def start_lab(lab: Lab) -> None:
    daemons = (Slapd(plain_ports=(389, 379, 390, 3268)), Nginx(), Postfix(), Dovecot(), Inn())
    lab.start(*daemons, Responder(ports=(691,)))


def write_table(timings: list[Timing], runs: int) -> None:
    base = timings[0].median
    lines = [
        f"Healthy lab in a network namespace (OpenLDAP, Dovecot, Postfix, INN, nginx, a portcall "
        f"routing responder on 691); {runs} runs each, one after the other, in one invocation of "
        f"`bench/check_vs_nmap.py` on {datetime.now(UTC):%Y-%m-%d}. nmap scripts: {NMAP_SCRIPTS}.",
        "",
        "| tool | median s | runs (s) | ratio to portcall | what it established |",
        "|---|---|---|---|---|",
    ]
    for t in timings:
        runs_text = ", ".join(f"{s:.2f}" for s in t.seconds)
        lines.append(
            f"| {t.name} | {t.median:.2f} | {runs_text} | {t.median / base:.1f}x | {t.summary} |"
        )
    write_section("check of the 17 Exchange catalog ports vs nmap -sV with NSE scripts", lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("nmap") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "nmap"], check=True)
    with Lab(HOST) as lab:
        start_lab(lab)
        timings = [run_portcall(lab, args.runs), run_nmap(lab, args.runs)]
    write_table(timings, args.runs)


if __name__ == "__main__":
    main()
