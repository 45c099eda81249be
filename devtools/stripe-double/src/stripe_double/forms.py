"""Decoding of Stripe's bracketed form encoding into nested dicts and lists.

The SDK sends `items[0][price]=p&metadata[k]=v&expand[0]=x` (curl users send `expand[]=x`);
handlers want `{"items": [{"price": "p"}], "metadata": {"k": "v"}, "expand": ["x"]}`.
"""

import re
from typing import Any
from urllib.parse import parse_qsl

from stripe_double.errors import parameter_invalid

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")

Params = dict[str, Any]


def decode(body: str) -> Params:
    """Nested params from an urlencoded query string or request body."""
    tree: Params = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        _insert(tree, _path(key), value)
    result = _listify(tree)
    if not isinstance(result, dict):
        raise TypeError("a form decodes to a dict")
    return result


def _path(key: str) -> list[str]:
    """`a[b][0]` → ["a", "b", "0"]; `a[]` → ["a", ""] (append)."""
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    return [head, *_SEGMENT.findall(key[len(head) :])]


def _insert(tree: Params, path: list[str], value: str) -> None:
    node = tree
    for index, segment in enumerate(path):
        last = index == len(path) - 1
        if segment == "":
            # `expand[]` appends: give each value its own numeric slot.
            segment = str(len(node))
        if last:
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            # `a=1&a[b]=2`: the nested form wins, as it carries more information.
            child = node[segment] = {}
        node = child


def _listify(node: Any) -> Any:
    """Dicts whose keys are all indices become lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def as_bool(value: Any) -> bool:
    """Stripe's booleans arrive as the strings "true"/"false"."""
    return value is True or str(value).lower() == "true"


def as_int(value: Any, param: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise parameter_invalid(param, f"Invalid integer: {value}") from None


def merge_metadata(current: dict[str, str], value: Any) -> dict[str, str]:
    """Stripe merges metadata on update: a key sent as "" is removed, `metadata=""` clears all."""
    if value is None:
        return dict(current)
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise parameter_invalid("metadata", "Invalid hash")
    merged = dict(current)
    for key, val in value.items():
        if val == "":
            merged.pop(str(key), None)
        else:
            merged[str(key)] = str(val)
    return merged


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    return [value]
