"""Time `portcall check` of 1, 16, 256 and 1,024 hosts x the 17 catalog ports, beside
`nmap -sV` with NSE scripts on 16 hosts.

A network namespace of this script's own runs `portcall listen --bind 0.0.0.0 --workers 2`
(the catalog ports moved by 20000, an Exchange 2003 server with the lab's certificate, which
no CA the check knows has issued: every TLS probe meets an untrusted chain); every address
of 127.0.0.0/8 is loopback inside it, so the targets are N addresses of 127.0.x.y, given with
`-iL`. For each
size the table gives the check's wall time, its CPU time (user + system, less the CPU of a
`portcall --version` start-up), the CPU per probe, its peak memory, and the verdicts. The rows
go into bench/RESULTS.md. Run as root: `.venv/bin/python bench/scale.py [--runs N] [--no-nmap]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from results import write_section  # noqa: E402

OFFSET = 20000
SIZES = (1, 16, 256, 1024)
NMAP_HOSTS = 16
#: Responder processes: one per core of the machine the table was made on.
WORKERS = 2
NMAP_SCRIPTS = "ssl-cert,ldap-rootdse,smtp-commands,imap-capabilities,pop3-capabilities"
TIME = ["/usr/bin/time", "-f", "%e %U %S %M"]


def netns(name: str, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def addresses(count: int) -> list[str]:
    """`count` loopback addresses, skipping .0 and .255 of each /24."""
    found = []
    for third in range(1, 256):
        for fourth in range(1, 255):
            found.append(f"127.0.{third}.{fourth}")
            if len(found) == count:
                return found
    return found


def moved_catalog(directory: Path) -> Path:
    sys.path.insert(0, str(ROOT / "src"))
    from portcall.catalog import load_catalog

    rows = []
    for entry in load_catalog().entries:
        fields = {**entry.to_dict(), "port": entry.port + OFFSET}
        rows.append("[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    path = directory / "moved.toml"
    path.write_text('[catalog]\nname = "moved"\n\n' + "\n".join(rows))
    return path


def measured(name: str, argv: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds, peak RSS in KB, and standard output."""
    done = netns(name, *TIME, *argv, timeout=1800)
    last = done.stderr.strip().splitlines()[-1].split()
    wall, user, system, rss = float(last[0]), float(last[1]), float(last[2]), int(last[3])
    if done.returncode not in (0, 1, 2):
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, user + system, rss, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-nmap", action="store_true")
    args = parser.parse_args()
    if not args.no_nmap and shutil.which("nmap") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "nmap"], check=True)
    name = f"pc-scale-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    work = Path(tempfile.mkdtemp(prefix="pc-scale-"))
    listener = None
    rows = []
    try:
        netns(name, "ip", "link", "set", "lo", "up")
        catalog = moved_catalog(work)
        listen = [sys.executable, "-m", "portcall", "listen", "--bind", "0.0.0.0"]
        listen += ["--port-offset", str(OFFSET), "--hostname", "mail.lab.test"]
        listen += ["--cert-dir", str(work / "certs"), "--max-connections", "4096"]
        listen += ["--workers", str(WORKERS)]
        listener = subprocess.Popen(
            ["ip", "netns", "exec", name, *listen],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)
        _, startup, _, _ = measured(name, [sys.executable, "-m", "portcall", "--version"])
        for size in SIZES:
            targets = work / f"targets-{size}.txt"
            targets.write_text("\n".join(addresses(size)) + "\n")
            check = [sys.executable, "-m", "portcall", "check", "-iL", str(targets)]
            check += ["--catalog", str(catalog), "--jsonl"]
            walls, cpus, rsss, verdicts = [], [], [], Counter[str]()
            for _ in range(args.runs):
                wall, cpu, rss, out = measured(name, check)
                walls.append(wall)
                cpus.append(cpu - startup)
                rsss.append(rss)
                verdicts = Counter(json.loads(line)["verdict"] for line in out.splitlines())
            probes = size * 17
            cpu = statistics.median(cpus)
            rows.append(
                (f"{size} x 17", "portcall check", walls, cpu, cpu / probes * 1000,
                 max(rsss) / 1024, ", ".join(f"{n} {v}" for v, n in verdicts.most_common()))
            )  # fmt: skip
        if not args.no_nmap:
            targets = work / f"targets-{NMAP_HOSTS}.txt"
            ports = ",".join(map(str, _moved_ports()))
            nmap = ["nmap", "-Pn", "-n", "-sT", "-sV", "-p", ports, "--script", NMAP_SCRIPTS]
            wall, cpu, rss, out = measured(name, [*nmap, "-iL", str(targets)])
            open_ports = sum(1 for line in out.splitlines() if "/tcp" in line and " open " in line)
            rows.append(
                (f"{NMAP_HOSTS} x 17", "nmap -sV + 5 NSE scripts", [wall], cpu,
                 cpu / (NMAP_HOSTS * 17) * 1000, rss / 1024, f"{open_ports} ports open")
            )  # fmt: skip
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(10)
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(work, ignore_errors=True)
    sys.path.insert(0, str(ROOT / "src"))
    from portcall.probing.loop import loop_name

    lines = [
        f"`portcall listen --workers {WORKERS}` serving 17 ports on every address of a network "
        f"namespace; targets given with `-iL`; default options (concurrency 64, 8 per host); "
        f"{args.runs} runs each in one invocation of `bench/scale.py` on "
        f"{datetime.now(UTC):%Y-%m-%d}. CPU is the check's user + system time less its "
        f"start-up ({startup:.2f} s); the responder shares the machine's 2 cores. The check's "
        f"event loop is {loop_name()}.",
        "",
        "| hosts x ports | tool | median wall s | runs (s) | CPU s | CPU ms per probe | "
        "peak RSS MB | verdicts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, tool, walls, cpu, per_probe, rss, summary in rows:
        runs_text = ", ".join(f"{w:.2f}" for w in walls)
        lines.append(
            f"| {size} | {tool} | {statistics.median(walls):.2f} | {runs_text} | {cpu:.2f} | "
            f"{per_probe:.2f} | {rss:.0f} | {summary} |"
        )
    write_section("many hosts: 1 to 1,024 hosts x 17 ports", lines)


def _moved_ports() -> list[int]:
    sys.path.insert(0, str(ROOT / "src"))
    from portcall.catalog import load_catalog

    return [entry.port + OFFSET for entry in load_catalog().entries]


if __name__ == "__main__":
    main()
