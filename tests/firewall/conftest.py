from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli

EXAMPLES = Path(__file__).parents[2] / "examples"


Run = Cli
