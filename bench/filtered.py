"""Time `portcall check` of networks whose catalog ports all drop SYNs, beside `nmap -sT -Pn`.

A network namespace of this script's own has its loopback up and an nftables input rule that
drops every TCP packet to the 17 catalog ports of 127.0.1.0/24, as a host firewall would (all
of 127.0.0.0/8 is loopback inside it), so nothing answers and nothing is refused: each
connection attempt waits out the timeout.
The rows go into bench/RESULTS.md. Run as root: `.venv/bin/python bench/filtered.py [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from results import write_section  # noqa: E402

PORTS = "389,636,379,390,3268,3269,143,993,110,995,119,563,80,443,25,465,691"
TIMEOUT = 2
#: The networks timed, and how many hosts each holds (its network and broadcast addresses
#: are left out, as `check` leaves them out).
NETWORKS = {62: "127.0.1.0/26", 254: "127.0.1.0/24"}
RULES = f"""
table inet bench {{
    chain input {{
        type filter hook input priority 0; policy accept;
        ip daddr 127.0.1.0/24 tcp dport {{ {PORTS} }} drop
    }}
}}
"""


def netns(name: str, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def timed(name: str, argv: list[str]) -> tuple[float, float, str]:
    """Wall seconds, the child's CPU seconds (user + system) and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = netns(name, *argv)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, cpu, done.stdout


def portcall(name: str, network: str) -> tuple[float, float, str]:
    argv = [sys.executable, "-m", "portcall", "check", network, "--timeout", str(TIMEOUT)]
    wall, cpu, output = timed(name, [*argv, "--json"])
    verdicts = [r["verdict"] for r in json.loads(output)["results"]]
    filtered = verdicts.count("filtered")
    return wall, cpu, f"{filtered}/{len(verdicts)} filtered"


def nmap(name: str, network: str) -> tuple[float, float, str]:
    argv = ["nmap", "-sT", "-Pn", "-n", "-p", PORTS, network]
    wall, cpu, output = timed(name, argv)
    filtered = sum(1 for line in output.splitlines() if "/tcp" in line and "filtered" in line)
    ignored = sum(
        int(word)
        for line in output.splitlines()
        if "filtered tcp ports" in line
        for word in line.split()
        if word.isdigit()
    )
    return wall, cpu, f"{filtered + ignored} filtered"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-nmap", action="store_true", help="Time portcall only.")
    parser.add_argument(
        "--nmap-runs", type=int, default=1, help="Runs of nmap (minutes each on a /24)."
    )
    args = parser.parse_args()
    if not args.no_nmap and shutil.which("nmap") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "nmap"], check=True)
    name = f"pc-bench-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    rows = []
    try:
        netns(name, "ip", "link", "set", "lo", "up")
        subprocess.run(
            ["ip", "netns", "exec", name, "nft", "-f", "-"], input=RULES, text=True, check=True
        )
        tools = [("portcall check", portcall, args.runs)]
        if not args.no_nmap:
            tools.append(("nmap -sT -Pn", nmap, args.nmap_runs))
        for hosts, network in NETWORKS.items():
            for tool, run, runs in tools:
                walls, cpus, summary = [], [], ""
                for _ in range(runs):
                    wall, cpu, summary = run(name, network)
                    walls.append(wall)
                    cpus.append(cpu)
                rows.append((hosts, tool, walls, statistics.median(cpus), summary))
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    lines = [
        f"Every catalog port of each host drops SYNs (nftables, in a network namespace); "
        f"`--timeout {TIMEOUT}`; {args.runs} runs of portcall, {args.nmap_runs} of nmap, in one "
        "invocation of `bench/filtered.py` "
        f"on {datetime.now(UTC):%Y-%m-%d}. Before connections and conversations were gated apart "
        "(64 probes in flight, 8 per host), 64 such hosts took 43 s and 256 took 164 s; "
        'nmap counts the ports it lists and those it folds into "Not shown: N filtered".',
        "",
        "| hosts | tool | median wall s | runs (s) | CPU s | ratio to portcall | result |",
        "|---|---|---|---|---|---|---|",
    ]
    base = {h: statistics.median(w) for h, t, w, _c, _s in rows if t == "portcall check"}
    for hosts, tool, walls, cpu, summary in rows:
        median = statistics.median(walls)
        runs_text = ", ".join(f"{w:.2f}" for w in walls)
        lines.append(
            f"| {hosts} | {tool} | {median:.2f} | {runs_text} | {cpu:.2f} | "
            f"{median / base[hosts]:.1f}x | {summary} |"
        )
    write_section("filtered networks: every port drops SYNs", lines)


if __name__ == "__main__":
    main()
