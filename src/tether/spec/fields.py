"""The machinery behind the typed container spec: each dataclass field carries the API name it
has in Docker's JSON, so that reading a body, writing it back and walking every field are one
generic function each (`parse`, `render`, `walk`) over `dataclasses.fields`, never a list of
names kept by hand beside the types.

A field is declared with `api(...)`: its API name, its zero value (what Go holds when the body
leaves it out or sends null), whether Go's encoder omits it when empty (`omitempty`), and for a
struct-typed field the dataclass it holds (`nested`, `many` for a map of them) or, for Go's
embedded structs (HostConfig embeds Resources), `embedded`: its fields sit at the parent's level
in JSON. Pure: standard library only.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def api(name: str, default: Any = None, *, omitempty: bool = False, nested: type | None = None,
        pointer: bool = False, many: bool = False, embedded: bool = False) -> Any:
    """A spec field named `name` in the API. A struct field (`nested`; not a `pointer`, not
    `many`) starts as that struct's zero value; mutable defaults are copied per instance."""
    meta = {"api": name, "omitempty": omitempty, "nested": nested, "many": many,
            "embedded": embedded}
    if nested is not None and not pointer and not many:
        return dataclasses.field(default_factory=nested, metadata=meta)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _zero(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def parse(cls: type[T], data: dict[str, Any] | None) -> T:
    """A spec dataclass from a body part as apitypes.check returns it (declared key spelling,
    null fields as None): what is missing or null takes the field's zero value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} is a JSON object, not {type(data).__name__}")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = f.metadata
        if meta["embedded"]:
            values[f.name] = parse(meta["nested"], data)
            continue
        raw = data.get(meta["api"])
        if raw is None:
            values[f.name] = _zero(f)
        elif meta["nested"] is not None and meta["many"]:
            if not isinstance(raw, dict):
                raise TypeError(f"{meta['api']} is a JSON object")
            values[f.name] = {key: None if item is None else parse(meta["nested"], item)
                              for key, item in raw.items()}
        elif meta["nested"] is not None:
            values[f.name] = parse(meta["nested"], raw)
        else:
            values[f.name] = copy.deepcopy(raw)
    return cls(**values)


def _empty(value: Any) -> bool:
    return value is None or value is False or value == 0 and not isinstance(value, bool) \
        and isinstance(value, (int, float)) or value == "" or value == [] or value == {}


def render(obj: Any, *, omit: bool = True) -> dict[str, Any]:
    """The API shape of a spec dataclass, in declaration order (Go's field order). With `omit`,
    omitempty fields that are empty are left out as Go's encoder does; without it every field is
    written (the record: nothing lost, nothing to guess on reading)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        meta = f.metadata
        value = getattr(obj, f.name)
        if meta["embedded"]:
            out.update(render(value, omit=omit))
            continue
        if omit and meta["omitempty"] and _empty(value):
            continue
        if value is not None and meta["nested"] is not None and meta["many"]:
            value = {key: None if item is None else render(item, omit=omit)
                     for key, item in value.items()}
        elif value is not None and meta["nested"] is not None:
            value = render(value, omit=omit)
        else:
            value = copy.deepcopy(value)
        out[meta["api"]] = value
    return out


def walk(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field]]:
    """Every leaf field of a spec type as (API path, field); an embedded struct's fields sit at
    its parent's level (HostConfig.Memory, not HostConfig.Resources.Memory), as in the API."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if meta["embedded"]:
            yield from walk(meta["nested"], prefix)
        else:
            yield f"{prefix}{meta['api']}", f


def is_default(obj: Any, f: dataclasses.Field) -> bool:
    """Whether `obj`'s field holds its zero value: an empty list or map counts as unset too,
    as Go's code tests `len(x) == 0` and the docker CLI sends [] for a flag not given."""
    value = getattr(obj, f.name)
    return value == _zero(f) or _empty(value)
