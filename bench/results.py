"""bench/RESULTS.md holds one section per benchmark; each script rewrites only its own."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
TITLE = "# Benchmarks"


def write_section(heading: str, lines: list[str]) -> None:
    """Replace the section `## heading` (or add it at the end) with `lines`."""
    text = RESULTS.read_text() if RESULTS.exists() else TITLE + "\n"
    head, *parts = text.split("\n## ")
    sections = dict(part.split("\n", 1) if "\n" in part else (part, "") for part in parts)
    sections[heading] = "\n".join(lines)
    out = head.strip() + "\n"
    for name, body in sections.items():
        out += f"\n## {name.strip()}\n\n{body.strip()}\n"
    RESULTS.write_text(out)
    print(f"## {heading}", *lines, sep="\n")
