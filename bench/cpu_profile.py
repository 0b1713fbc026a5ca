"""Where `check`'s CPU goes: the 17 catalog ports of 62 hosts under cProfile, grouped.

A network namespace of this script's own runs `portcall listen --bind 0.0.0.0` (ports moved
by 20000, the lab's untrusted certificate); the check runs in this process, inside the same
namespace (the script re-executes itself there), under cProfile. Each function's own time
(`tottime`) goes to one group by where its code lives; the table goes into bench/RESULTS.md.
The profiler's clock is the process's CPU time, so time spent waiting for the peers counts
nowhere. cProfile slows Python code more than C code, so the shares lean toward Python.
Run as root: `.venv/bin/python bench/cpu_profile.py`.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from results import write_section  # noqa: E402

OFFSET = 20000
NETWORK = "127.0.1.0/26"
#: Groups, first match wins: a substring of the code's file (or of a built-in's name).
GROUPS = (
    (
        "OpenSSL (through Python's ssl and pyOpenSSL): TLS handshakes, reads and writes",
        ("_ssl.", "ssl.py", "_openssl.", "OpenSSL/"),
    ),
    ("pyasn1: LDAP and Kerberos messages", ("pyasn1",)),
    ("cryptography: certificate facts", ("cryptography",)),
    ("sockets and the event loop (asyncio)", ("asyncio", "selectors", "_socket", "select.")),
    ("h11: HTTP", ("h11",)),
    ("portcall's protocols", ("portcall/protocols",)),
    ("portcall's probing, TLS judgement and reports", ("portcall/",)),
)


def group_of(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for name, needles in GROUPS:
        if any(needle in where for needle in needles):
            return name
    return "everything else (garbage collection, built-ins, the standard library)"


def profile_here(catalog: Path) -> None:
    """Inside the namespace: run the check under cProfile and print the groups as JSON."""
    sys.path.insert(0, str(ROOT / "src"))
    from portcall import check_async
    from portcall.catalog import load_catalog

    entries = list(load_catalog(catalog).entries)
    count = 0

    def seen(_result: object) -> None:
        nonlocal count
        count += 1

    profiler = cProfile.Profile(time.process_time)
    start = time.process_time()
    profiler.enable()
    asyncio.run(check_async([NETWORK], entries=entries, on_result=seen, keep=False))
    profiler.disable()
    cpu = time.process_time() - start
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = defaultdict(float)
    for (filename, _line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename, function)] += row[2]
    print(json.dumps({"probes": count, "cpu": cpu, "groups": groups}))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        profile_here(Path(sys.argv[2]))
        return
    name = f"pc-profile-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    work = Path(tempfile.mkdtemp(prefix="pc-profile-"))
    listener = None
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        sys.path.insert(0, str(ROOT / "src"))
        from portcall.catalog import load_catalog

        rows = []
        for entry in load_catalog().entries:
            fields = {**entry.to_dict(), "port": entry.port + OFFSET}
            rows.append(
                "[[port]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items())
            )
        catalog = work / "moved.toml"
        catalog.write_text('[catalog]\nname = "moved"\n\n' + "\n".join(rows))
        listen = [sys.executable, "-m", "portcall", "listen", "--bind", "0.0.0.0"]
        listen += ["--port-offset", str(OFFSET), "--cert-dir", str(work / "certs")]
        listener = subprocess.Popen(
            ["ip", "netns", "exec", name, *listen],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(3)
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        done = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, __file__, "--inside", str(catalog)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        found = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(10)
        subprocess.run(["ip", "netns", "del", name], check=False)
    total = sum(found["groups"].values())
    lines = [
        f"`check` of the 17 catalog ports of {NETWORK} ({found['probes']} probes) against "
        f"`portcall listen` with an untrusted certificate, under cProfile, on "
        f"{datetime.now(UTC):%Y-%m-%d} (`bench/cpu_profile.py`). {found['cpu']:.2f} s of CPU under "
        "the profiler (its clock is CPU time); each function's own time goes to the group its code "
        "belongs to.",
        "",
        "| where the time goes | s | share |",
        "|---|---|---|",
    ]
    for group, seconds in sorted(found["groups"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {group} | {seconds:.2f} | {seconds / total:.0%} |")
    write_section("profile: where check's CPU goes", lines)


if __name__ == "__main__":
    main()
