"""The frozen model and plan as JSON, and back (pure).

A run resolves its topology once (YAML -> checked model -> scenario overrides -> plan) and hands the result to
the controller process as ``plan.json``, which the run folder keeps: the controller never reads or validates
YAML, and a run can be replayed from what it kept. Encoding follows the dataclasses' own type hints, so a
field added to the model travels without a change here.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from functools import cache
from ipaddress import IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path
from typing import Any

from multi6lab.topologies.plan import Brief, Plan

FORMAT = 1  # bumped when a change makes older files unreadable
ADDRESS_TYPES = (IPv6Address, IPv6Network, IPv6Interface)


class CodecError(ValueError):
    """The JSON does not describe a value of the expected type (a damaged or foreign file)."""


def encode(value: Any) -> Any:
    """Plain JSON data for a dataclass tree: enums by value, addresses and prefixes as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, ADDRESS_TYPES):
        return str(value)
    if isinstance(value, tuple | list | frozenset):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, data: Any) -> Any:
    """The value of type ``tp`` that :func:`encode` turned into ``data``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return decode(inner[0], data)
    if origin is typing.Literal:
        if data not in args:
            raise CodecError(f"{data!r} is not one of {args}")
        return data
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in _list(data))
        return tuple(decode(a, v) for a, v in zip(args, _list(data), strict=True))
    if origin is frozenset:
        return frozenset(decode(args[0], v) for v in _list(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise CodecError(f"expected a mapping, got {type(data).__name__}")
        return {decode(args[0], k): decode(args[1], v) for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, dict):
            raise CodecError(f"expected a mapping for {tp.__name__}, got {type(data).__name__}")
        hints = _hints(tp)
        return tp(**{f.name: decode(hints[f.name], data[f.name]) for f in dataclasses.fields(tp) if f.name in data})
    if isinstance(tp, type) and issubclass(tp, Enum | IPv6Address | IPv6Network | IPv6Interface):
        return tp(data)
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp in (int, str, bool) and type(data) is tp:
        return data
    raise CodecError(f"expected {getattr(tp, '__name__', tp)}, got {data!r}")


def _list(data: Any) -> list[Any]:
    if not isinstance(data, list):
        raise CodecError(f"expected a list, got {type(data).__name__}")
    return data


def dumps(value: Plan | Brief) -> str:
    """A plan (``plan.json``, what a run built) or a controller's brief (``controller-<site>.brief.json``)."""
    key = "plan" if isinstance(value, Plan) else "brief"
    return json.dumps({"format": FORMAT, key: encode(value)}, separators=(",", ":"))


def loads(text: str) -> Plan:
    plan: Plan = _loads(text, Plan, "plan")
    return plan


def read(path: Path) -> Plan:
    plan: Plan = _read(path, Plan, "plan")
    return plan


def read_brief(path: Path) -> Brief:
    brief: Brief = _read(path, Brief, "brief")
    return brief


def write(value: Plan | Brief, path: Path) -> Path:
    path.write_text(dumps(value))
    return path


def _loads(text: str, kind: type, key: str) -> Any:
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or key not in doc:
        raise CodecError(f"not a multi6lab {key} of format {FORMAT}")
    return decode(kind, doc[key])


def _read(path: Path, kind: type, key: str) -> Any:
    try:
        return _loads(path.read_text(), kind, key)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CodecError(f"{path}: cannot read the {key}: {exc}") from None
