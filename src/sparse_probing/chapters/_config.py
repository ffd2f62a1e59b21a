"""Chapter configs: frozen dataclasses whose fields are a notebook's parameters, checked by name and type."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self, Union

__all__ = ["ChapterConfig", "ConfigError"]


class ConfigError(ValueError):
    """A chapter parameter that does not exist or has the wrong type."""


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """``value`` converted to the annotated type ``tp`` (lists become tuples), or ConfigError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, value, arg)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"parameter '{name}' must be {_describe(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"parameter '{name}' must be one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"parameter '{name}' must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"parameter '{name}' must be a mapping, got {value!r}")
        key_t, val_t = args if args else (Any, Any)
        return types.MappingProxyType(
            {_coerce(f"{name} key", k, key_t): _coerce(f"{name}[{k!r}]", v, val_t) for k, v in value.items()}
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"parameter '{name}' must be {_describe(tp)}, got {value!r} ({type(value).__name__})")


@dataclasses.dataclass(frozen=True)
class ChapterConfig:
    """Base of every chapter's config: subclass it with one documented field per notebook parameter."""

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Self:
        """The config from a notebook's parameter values; unknown names and wrong types raise ConfigError.

        Lists become tuples and mappings read-only, so a config is hashable in spirit and cannot be changed after
        it is built. Fields not given keep their defaults.
        """
        values = {**(params or {}), **kwargs}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(
                f"{cls.__name__} has no parameter {', '.join(map(repr, unknown))}; its parameters: {', '.join(fields)}"
            )
        hints = typing.get_type_hints(cls)
        coerced = {name: _coerce(name, value, hints[name]) for name, value in values.items()}
        try:
            return cls(**coerced)
        except TypeError as err:  # a field without default that was not given
            raise ConfigError(f"{cls.__name__}: {err}") from None

    def require(self, ok: bool, message: str) -> None:
        """Raise ConfigError ``"<ConfigClass>: message"`` unless ``ok`` (for the checks of ``__post_init__``)."""
        if not ok:
            raise ConfigError(f"{type(self).__name__}: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists, mappings as dicts) for results files."""

        def plain(v: Any) -> Any:
            if isinstance(v, tuple | list):
                return [plain(x) for x in v]
            if isinstance(v, Mapping):
                return {k: plain(x) for k, x in v.items()}
            return v

        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
