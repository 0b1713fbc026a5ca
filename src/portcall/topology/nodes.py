"""Reading a composed YAML node tree with the line of every value at hand.

PyYAML's composed nodes (SafeLoader) keep where each key and value starts, which plain
`yaml.safe_load` forgets; these helpers read them and raise a `TopologyError` that names the
file, the line, the field and what is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import yaml

from portcall.topology.model import TopologyError

_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
#: Names end up in rule comments, set names and graph labels: keep them plain.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"


@dataclass(frozen=True)
class Reader:
    """Reads nodes of one file; `origin` is how errors name the file."""

    origin: str

    def fail(self, node: yaml.Node, field: str, allowed: str) -> TopologyError:
        return TopologyError(self.origin, node.start_mark.line + 1, field, allowed)

    def mapping(self, node: yaml.Node, field: str) -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) for each entry; keys are plain and never repeat."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, f"must be a mapping ({_shape(node)} given)")
        seen: set[str] = set()
        for key_node, value_node in node.value:
            plain = isinstance(key_node, yaml.ScalarNode) and key_node.tag != _NULL
            if not plain or not str(key_node.value).strip():
                raise self.fail(key_node, field or "file", "keys must be plain names")
            key = str(key_node.value)
            if key in seen:
                raise self.fail(key_node, _join(field, key), "appears twice; give it once")
            seen.add(key)
            yield key, key_node, value_node

    def fields(self, node: yaml.Node, field: str, known: tuple[str, ...]) -> dict[str, yaml.Node]:
        """A mapping of fixed keys: an unknown key is an error that lists the known ones."""
        found: dict[str, yaml.Node] = {}
        for key, key_node, value_node in self.mapping(node, field):
            if key not in known:
                raise self.fail(
                    key_node, _join(field, key), f"unknown key; allowed: {', '.join(known)}"
                )
            found[key] = value_node
        return found

    def sequence(self, node: yaml.Node, field: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, f"must be a list ({_shape(node)} given)")
        return list(node.value)

    def text(self, node: yaml.Node, field: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL or not node.value.strip():
            raise self.fail(node, field, f"must be a non-empty text ({_shape(node)} given)")
        return str(node.value).strip()

    def name(self, node: yaml.Node, field: str) -> str:
        value = self.text(node, field)
        if not NAME.match(value):
            raise self.fail(node, field, f"{value!r} is not a name: use {NAME_RULE}")
        return value

    def integer(self, node: yaml.Node, field: str, low: int, high: int) -> int:
        value = _as_int(node)
        if value is None or not low <= value <= high:
            raise self.fail(node, field, f"must be a whole number from {low} to {high}")
        return value

    def boolean(self, node: yaml.Node, field: str) -> bool:
        if isinstance(node, yaml.ScalarNode) and node.tag == _BOOL:
            return str(node.value).lower() in ("true", "yes", "on")
        raise self.fail(node, field, "must be true or false")

    def names(self, node: yaml.Node, field: str) -> list[tuple[str, yaml.Node]]:
        """A list of names (a single name is taken as a list of one)."""
        items = [node] if isinstance(node, yaml.ScalarNode) else self.sequence(node, field)
        return [(self.name(item, f"{field}[{i}]"), item) for i, item in enumerate(items)]


def _as_int(node: yaml.Node) -> int | None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _INT:
        return None
    text = str(node.value).replace("_", "").lower()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    try:
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        return sign * int(text, 10)
    except ValueError:
        return None


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _shape(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _NULL:
        return "nothing"
    return repr(str(node.value)[:40])
