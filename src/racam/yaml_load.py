"""YAML reading that refuses a key given twice in one mapping (PyYAML keeps the last silently).

:func:`load_yaml` is ``yaml.safe_load`` with that check: two ``classifier:`` blocks in a config,
or ``train:`` twice in a split file, raise :class:`DuplicateKeyError` naming the key and both
lines, instead of dropping the first block without a word. Merge keys (``<<: *base``) may still
be overridden by a key of the mapping itself, as YAML defines.
"""

from __future__ import annotations

from typing import Any

import yaml

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping holds the same key twice: ``key``, and the 1-based ``lines`` of both."""

    def __init__(self, key: Any, lines: tuple[int, int]) -> None:
        self.key, self.lines = key, lines
        super().__init__(f"key {key!r} appears twice in one mapping (lines {lines[0]} and "
                         f"{lines[1]}); the first would be dropped, so merge them into one")


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` raising :class:`DuplicateKeyError` for a key given twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # SafeLoader reports unhashable keys itself
            line = key_node.start_mark.line + 1
            if key in first:
                raise DuplicateKeyError(key, (first[key], line))
            first[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse YAML ``text`` like ``yaml.safe_load``, refusing duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # a SafeLoader subclass
