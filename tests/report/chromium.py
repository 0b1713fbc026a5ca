"""Headless Chromium for the tests of pages: the DOM after the page's scripts ran, and a
screenshot.

Chromium runs in a network namespace of its own (`unshare --net`): whatever a page or the
browser itself would fetch, nothing leaves this machine, and a page that needs the network
to render shows it. Each run gets a fresh profile directory and a time limit. A missing
Chromium or unshare fails the test (tests/run.sh installs both), it never skips it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import pytest

#: Seconds one Chromium run may take; a report renders in about one.
TIMEOUT: Final = 30
#: No first-run UI, no background requests, no GPU: a quiet, bounded browser.
FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # tests run as root, where Chromium refuses its sandbox
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; tests/run.sh installs it", pytrace=False)
    return path


def run_chromium(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Chromium with `arguments`, in a network namespace with no network, then gone."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        argv = [_program("unshare"), "--net", "--", _program("chromium"), *FLAGS]
        argv += [f"--user-data-dir={profile}", *arguments]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        pytest.fail(f"chromium exited {done.returncode}: {done.stderr[-2000:]}", pytrace=False)
    return done


def file_url(path: Path, fragment: str = "") -> str:
    return path.resolve().as_uri() + (f"#{fragment}" if fragment else "")


def dump_dom(page: Path, fragment: str = "") -> str:
    """The page's DOM, serialised after its scripts ran (`fragment` is the part after #)."""
    return run_chromium("--dump-dom", file_url(page, fragment)).stdout


def screenshot(page: Path, target: Path, width: int = 1280, height: int = 900) -> None:
    """A PNG of the page as a `width` x `height` window shows it, written to `target`."""
    run_chromium(
        f"--screenshot={target.resolve()}", f"--window-size={width},{height}", file_url(page)
    )
    if not target.is_file():
        pytest.fail(f"chromium wrote no screenshot to {target}", pytrace=False)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk comes first)."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@dataclass
class Element:
    """One start tag of a page: its name, attributes and the text up to the next tag."""

    tag: str
    attrs: dict[str, str]
    raw: str = ""

    @property
    def text(self) -> str:
        """The text up to the next tag, without the white space around it."""
        return self.raw.strip()

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[Element] = []
        self.current: Element | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current = Element(tag, {name: value or "" for name, value in attrs})
        self.found.append(self.current)

    def handle_endtag(self, tag: str) -> None:
        self.current = None

    def handle_data(self, data: str) -> None:
        if self.current is not None:
            self.current.raw += data


def elements(page: str) -> list[Element]:
    """Every element of `page` (HTML text), in document order."""
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector.found


def find(page: str, tag: str | None = None, **attrs: str) -> list[Element]:
    """The elements with this tag (any, if None) whose attributes have these values;
    `class_` matches one class among several."""
    wanted_class = attrs.pop("class_", None)
    return [
        e
        for e in elements(page)
        if (tag is None or e.tag == tag)
        and all(e.attrs.get(name.replace("_", "-")) == value for name, value in attrs.items())
        and (wanted_class is None or wanted_class in e.classes)
    ]
