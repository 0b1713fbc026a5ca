"""CPU per probe against real daemons, by kind of port, and many hosts with every verdict kept.

The interop lab's daemons (OpenLDAP, Postfix, Dovecot, INN, nginx, and portcall's responder on
691) run in a network namespace listening on every address, so each address of 127.0.0.0/8
inside it is a mail server with the 17 catalog ports (the lab of
tests/interop/test_scale_lab.py). The check runs in the namespace without the lab's CA, so
every TLS probe meets an untrusted chain, as the goal is stated.

One run of all 17 ports warms the daemons up first and is not counted. CPU per probe is the
check's user + system time less the CPU of a start-up that probes nothing (`portcall check
--help`), divided by the probes; what else a run costs whatever its size (the trust store,
modules imported on first use such as pyOpenSSL, the first use of each module) is spread over
256 hosts. The marginal CPU per probe leaves that out too: a run of one host on the same
ports is the start-up, and the probes beyond it cost the difference. The row of all 17 ports
is measured once more on asyncio's own event loop (`PORTCALL_LOOP=asyncio`), beside the
default uvloop; the rows of implicit TLS and of all 17 ports once more with every handshake in
Python's `ssl` (`PORTCALL_TLS=ssl`), beside the default that makes the unverifying ones in
pyOpenSSL. The daemons run in their modes for many clients (Dovecot's login processes
shared, nnrpd as its own daemon: `tests/interop/lab/farm.py`); the rows of implicit TLS and of
all 17 ports are measured once more in a second lab whose daemons start a process for each
connection (a new Dovecot login process, nnrpd run by a super-server), whose starting weighs
on the check's CPU on these shared cores. Ports that are not `ok` are printed with their
reasons. Around each run of many hosts the whole machine's busy CPU time is read
(/proc/stat): over the wall time it says whether the run was bounded by CPU, and less the
check's it is the daemons' CPU per probe. Where `perf` is installed, one more run of all 17
ports is sampled by it, and its CPU split by library: the Python interpreter (portcall's code,
asyncio, the standard library), OpenSSL, the kernel and the C library. The rows go into
bench/RESULTS.md. Run as root, with the project's environment:
`.venv/bin/python bench/real_daemons.py [--runs N] [--hosts N] [--large N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from results import write_section  # noqa: E402

from portcall.probing.loop import LOOP_VARIABLE, loop_name  # noqa: E402
from portcall.tls.engine import ENGINE_VARIABLE, engine_name  # noqa: E402
from tests.interop.lab.farm import mail_server_farm  # noqa: E402
from tests.interop.lab.lab import Lab  # noqa: E402

#: The kinds of port, by the catalog ports of each.
KINDS = {
    "plain text (80, 691)": "80,691",
    "implicit TLS (443, 465, 563, 636, 993, 995, 3269)": "443,465,563,636,993,995,3269",
    "STARTTLS (25, 110, 119, 143)": "25,110,119,143",
    "LDAP with StartTLS (379, 389, 390, 3268)": "379,389,390,3268",
    "all 17": "",
}
#: Rows measured again in a lab whose daemons start a process for each connection.
PER_CONNECTION = {
    f"{kind}, daemons starting a process per connection": KINDS[kind]
    for kind in ("implicit TLS (443, 465, 563, 636, 993, 995, 3269)", "all 17")
}
TIME = ["/usr/bin/time", "-f", "%e %U %S %M %c"]
#: Rows measured again with every handshake in Python's `ssl` (`PORTCALL_TLS=ssl`), none in
#: pyOpenSSL.
IN_SSL = {
    f"{kind}, every handshake in Python's ssl": KINDS[kind]
    for kind in ("implicit TLS (443, 465, 563, 636, 993, 995, 3269)", "all 17")
}
#: Libraries by what they are, first match wins: a substring of the name perf gives them.
LIBRARIES = (
    ("the Python interpreter: portcall, asyncio, the standard library", ("libpython", "python3")),
    (
        "OpenSSL: handshakes, records (the system's, and the one in cryptography's _rust.abi3)",
        ("libcrypto", "libssl", "_rust.abi3"),
    ),
    ("the kernel: system calls, loopback TCP", ("[kernel",)),
    ("the C library: memory, copies, locks", ("libc.so", "libc-")),
)


def addresses(count: int) -> list[str]:
    return [f"127.0.{1 + n // 256}.{n % 256}" for n in range(count)]


class Run(NamedTuple):
    wall: float
    #: The check's user + system seconds.
    cpu: float
    #: Peak RSS, KB.
    rss: int
    out: str
    #: Times the check was switched out while it could have run on (preempted).
    preempted: int
    #: Busy CPU seconds of the whole machine (all cores, every process) during the run.
    busy: float


def measured(lab: Lab, argv: list[str], env: Mapping[str, str] | None = None) -> Run:
    """The check's wall and CPU seconds, peak RSS, output and preemptions, and what the
    whole machine was busy meanwhile."""
    before = machine_busy()
    done = lab.run([*TIME, *argv], env=env, timeout=1800)
    busy = machine_busy() - before
    wall, user, system, rss, preempted = done.stderr.strip().splitlines()[-1].split()
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"check failed ({done.returncode}): {done.stderr[-2000:]}")
    cpu = float(user) + float(system)
    return Run(float(wall), cpu, int(rss), done.stdout, int(preempted), busy)


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat: user, nice, system,
    irq, softirq), in the kernel's clock ticks."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def check(lab: Lab, hosts: int, ports: str) -> list[str]:
    targets = lab.workdir / f"targets-{hosts}.txt"
    targets.write_text("\n".join(addresses(hosts)) + "\n")
    argv = [sys.executable, "-m", "portcall", "check", "-iL", str(targets), "--jsonl"]
    argv += ["--servername", lab.hostname, "--timeout", "10"]
    return argv + (["--ports", ports] if ports else [])


def verdicts(out: str) -> Counter[str]:
    results = [json.loads(line) for line in out.splitlines()]
    for result in results:
        if result["verdict"] != "ok":
            print(f"not ok: {result['address']} {result['port']}: {result['reason']}")
    return Counter(result["verdict"] for result in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=256, help="hosts for the CPU rows")
    parser.add_argument("--large", type=int, nargs="*", default=[256, 1024])
    args = parser.parse_args()
    kinds, sizes = [], []
    with Lab("mail.lab.test", every_address=True) as lab:
        lab.start(*mail_server_farm())
        time.sleep(1)
        startups = [measured(lab, [sys.executable, "-m", "portcall", "check", "--help"]).cpu]
        startups += [measured(lab, [sys.executable, "-m", "portcall", "check", "--help"]).cpu]
        startup = min(startups)
        # Not counted: the daemons start their worker processes and fill their caches on
        # the first flood, which would otherwise weigh on whichever kind of port came first.
        measured(lab, check(lab, args.hosts, ""))
        for kind, ports in KINDS.items():
            kinds.append(_kind(lab, args, kind, ports, startup))
        asyncio_loop = {LOOP_VARIABLE: "asyncio"}
        kinds.append(_kind(lab, args, "all 17, on asyncio's loop", "", startup, asyncio_loop))
        for kind, ports in IN_SSL.items():
            kinds.append(_kind(lab, args, kind, ports, startup, {ENGINE_VARIABLE: "ssl"}))
        for hosts in args.large:
            sizes.append((hosts, measured(lab, check(lab, hosts, ""))))
        split = libraries(lab, check(lab, args.hosts, "")) if shutil.which("perf") else []
    with Lab("mail.lab.test", every_address=True) as lab:
        lab.start(*mail_server_farm(process_per_connection=True))
        time.sleep(1)
        measured(lab, check(lab, args.hosts, ""))
        for kind, ports in PER_CONNECTION.items():
            kinds.append(_kind(lab, args, kind, ports, startup))
    write(args, startup, kinds, sizes, split)


def libraries(lab: Lab, argv: list[str]) -> list[tuple[str, float]]:
    """The check's CPU samples (perf, 999 a second) by library, as shares."""
    data = lab.workdir / "perf.data"
    lab.run(["perf", "record", "-q", "-F", "999", "-o", str(data), "--", *argv], timeout=1800)
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shares: dict[str, float] = {}
    for line in report.splitlines():
        found = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if found is None:
            continue
        share, library = float(found.group(1)), found.group(2)
        kind = next((k for k, names in LIBRARIES if any(n in library for n in names)), None)
        other = "other: extension modules (uvloop, json, asyncio's C parts)"
        shares[kind or other] = shares.get(kind or other, 0.0) + share
    return sorted(shares.items(), key=lambda kv: -kv[1])


Kind = tuple[str, int, float, float, float, Counter[str]]


def _kind(
    lab: Lab,
    args: argparse.Namespace,
    kind: str,
    ports: str,
    startup: float,
    env: Mapping[str, str] | None = None,
) -> Kind:
    """A row: probes, CPU s less the start-up, CPU ms per probe, marginal CPU ms per probe
    (beyond a run of one host), and the verdicts."""
    probes, cpu, found = _cpu(lab, args, args.hosts, ports, env)
    one, cpu_one, _ = _cpu(lab, args, 1, ports, env)
    marginal = (cpu - cpu_one) / (probes - one) * 1000
    return kind, probes, cpu - startup, (cpu - startup) / probes * 1000, marginal, found


def _cpu(
    lab: Lab,
    args: argparse.Namespace,
    hosts: int,
    ports: str,
    env: Mapping[str, str] | None = None,
) -> tuple[int, float, Counter[str]]:
    """Probes, median CPU seconds, and the verdicts of `args.runs` runs on `hosts` hosts."""
    runs = [measured(lab, check(lab, hosts, ports), env) for _ in range(args.runs)]
    found = verdicts(runs[-1].out)
    return sum(found.values()), statistics.median(run.cpu for run in runs), found


def write(
    args: argparse.Namespace,
    startup: float,
    kinds: list[Kind],
    sizes: list[tuple[int, Run]],
    split: list[tuple[str, float]],
) -> None:
    lines = [
        f"The interop lab's daemons (OpenLDAP, Postfix, Dovecot, INN, nginx; portcall's "
        f"responder on 691) on every address of a network namespace, sharing the machine's "
        f"2 cores with the check, each in its mode for many clients (Dovecot's login "
        f"processes serve many connections each, nnrpd runs as its own daemon) unless the "
        f"row says they start a process for each connection (Dovecot's default, and nnrpd "
        f"from a super-server as from inetd); no CA given, so every chain is untrusted; "
        f"`--timeout 10`; "
        f"{args.hosts} hosts, medians of {args.runs} runs; `bench/real_daemons.py` on "
        f"{datetime.now(UTC):%Y-%m-%d}, after one run of all 17 ports that warms the daemons up "
        f"and is not counted. CPU is the check's user + system time less a start-up "
        f"(`portcall check --help`, {startup:.2f} s); its system time includes the kernel's "
        f"loopback work for the daemons. The marginal CPU is that of the probes beyond a run "
        f"of one host on the same ports. The event loop is {loop_name()}, and the unverifying "
        f"handshakes run in {engine_name()}, unless the row says otherwise. Runs differ by 10 "
        f"to 20 %: the daemons and the check share the cores.",
        "",
        "| ports | probes | CPU s | CPU ms per probe | marginal CPU ms per probe | verdicts |",
        "|---|---|---|---|---|---|",
    ]
    for kind, probes, cpu, per_probe, marginal, found in kinds:
        lines.append(
            f"| {kind} | {probes} | {cpu:.2f} | {per_probe:.2f} | {marginal:.2f} | "
            f"{_summary(found)} |"
        )
    lines += [
        "",
        f"Many hosts, one run each. The machine's cores busy is all its busy CPU time during "
        f"the run (/proc/stat: every process, the kernel) over the wall time, of "
        f"{os.cpu_count()}; the daemons' CPU per probe is that busy time less the check's. "
        f"Preempted: times per probe the check was switched out while it could have run on.",
        "",
        "| hosts x 17 ports | wall s | CPU s | CPU ms per probe | cores busy | daemons' CPU ms "
        "per probe | preempted per probe | peak RSS MB | verdicts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for hosts, run in sizes:
        probes = hosts * 17
        cpu = run.cpu - startup
        lines.append(
            f"| {hosts} | {run.wall:.1f} | {cpu:.2f} | {cpu / probes * 1000:.2f} | "
            f"{run.busy / run.wall:.2f} | {(run.busy - run.cpu) / probes * 1000:.2f} | "
            f"{run.preempted / probes:.2f} | {run.rss / 1024:.0f} | "
            f"{_summary(verdicts(run.out))} |"
        )
    if split:
        lines += [
            "",
            f"Where the CPU of one more run of all 17 ports at {args.hosts} hosts goes, by "
            "library (`perf record`, 999 samples a second):",
            "",
            "| library | share |",
            "|---|---|",
        ]
        lines += [f"| {library} | {share:.0f} % |" for library, share in split]
    write_section("real daemons: CPU per probe by kind of port, and many hosts", lines)


def _summary(found: Counter[str]) -> str:
    return ", ".join(f"{count} {verdict}" for verdict, count in found.most_common())


if __name__ == "__main__":
    main()
