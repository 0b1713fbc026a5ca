"""The routing banner's fixed shape, known to both roles."""

from __future__ import annotations

import re
from typing import Final

PRODUCT: Final = "Microsoft Exchange routing engine (RESvc)"

#: The fixed shape of the banner's opening; "#" stands for one hexadecimal digit.
HEAD_SHAPE: Final = b"{########} NODEINFO"
HEX_DIGITS: Final = frozenset(b"0123456789abcdefABCDEF")

NODE_INFO = re.compile(r"^\{[0-9A-Fa-f]{8}\} NODEINFO \((?P<node_info>\d+)\)")
VERSION_TEXT = re.compile(r"Version: (?P<version>\d[-.\w ]*?) Microsoft Routing Server")
