"""A typed registry of named components (methods, datasets, executors) and their presets.

Every component class carries its hyper-parameters in one frozen dataclass, ``cls.Config``; a preset
is a name bound to some of those values. Names are refused twice (both sources are named) instead
of being silently overwritten, and presets are validated when registered, not when first used.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from vadbench.api.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: a component class plus the option values of its preset."""

    name: str
    cls: type[T]
    preset: Mapping[str, Any]
    description: str
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named components of one kind (``"method"``, ``"dataset"``...) that subclass `base`."""

    def __init__(self, kind: str, base: type) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, cls: type[T], description: str | None = None, /, *, source: str = "?",
            **preset: Any) -> None:
        """Register `cls` under `name` from Python code (tests), `source` naming who did; plugins' hooks
        get `registrar`'s callable instead, which reserves no keyword."""
        self._register(name, cls, description, preset, source)

    def registrar(self, source: str) -> Callable[..., None]:
        """The ``register(name, cls, description=None, /, **preset)`` callable that a plugin's hook gets.

        `name`, `cls` and `description` are positional-only, so that every option of a Config (one
        named ``description`` included) can be preset by keyword: no option name is reserved.
        """

        def register(name: str, cls: type[T], description: str | None = None, /, **preset: Any) -> None:
            self._register(name, cls, description, preset, source)

        return register

    def _register(
        self, name: str, cls: type[T], description: str | None, preset: Mapping[str, Any], source: str
    ) -> None:
        """Register `cls` under `name`, with `preset` option values; refuses duplicates and bad presets."""
        if name in self._entries:
            raise UsageError(
                f"{self.kind} {name!r} is registered twice: by {self._entries[name].source} and by {source}"
            )
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise UsageError(f"{self.kind} {name!r} from {source}: {cls!r} is not a {self.base.__name__}")
        config_cls = getattr(cls, "Config", None)
        if not dataclasses.is_dataclass(config_cls):
            raise UsageError(f"{self.kind} {name!r} from {source}: {cls.__name__}.Config must be a dataclass")
        required = getattr(self.base, "required_options", ())
        missing = [option for option in required if option not in option_names(config_cls)]  # type: ignore[arg-type]
        if missing:
            raise UsageError(f"{self.kind} {name!r} from {source}: {cls.__name__}.Config has no option "
                             f"{missing[0]!r} (a {self.kind}'s Config needs {', '.join(required)})")
        unparseable = unparseable_option(config_cls)  # type: ignore[arg-type]
        if unparseable is not None:
            option, hint = unparseable
            raise UsageError(f"{self.kind} {name!r} from {source}: {cls.__name__}.Config option {option!r} has type "
                             f"{hint!r}, which --set cannot parse (use int, float, bool, str, Literal, "
                             "tuple[X, ...] or X | None of those)")
        try:
            options = build_config(config_cls, preset)  # type: ignore[arg-type]
        except UsageError as error:
            raise UsageError(f"{self.kind} {name!r} from {source}: bad preset: {error}") from None
        text = description or ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        self._entries[name] = Entry(name, cls, dict(preset), text, source, dataclasses.asdict(options))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[name] for name in self.names())

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UsageError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
            ) from None

    def config(self, name: str, overrides: Mapping[str, Any] | None = None) -> Any:
        """The validated Config of `name` with `overrides` (strings are parsed to the field's type)."""
        entry = self.get(name)
        try:
            return build_config(entry.cls.Config, {**entry.preset, **(overrides or {})})  # type: ignore[attr-defined]
        except UsageError as error:
            raise UsageError(f"{self.kind} {name!r}: {error}") from None

    def parse_options(self, name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """`overrides` validated and converted to their option types (so equal runs get equal keys)."""
        config = self.config(name, overrides)
        return {key: getattr(config, key) for key in overrides}

    def create(self, name: str, overrides: Mapping[str, Any] | None = None) -> T:
        """A new component from its registered name plus option overrides."""
        return self.get(name).cls(self.config(name, overrides))  # type: ignore[call-arg]


def option_names(config_cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_cls)]


def unparseable_option(config_cls: type) -> tuple[str, Any] | None:
    """The first option of `config_cls` whose type `parse_value` cannot build from ``--set`` text (such as
    ``list[int]``, which would stay the string ``'1,2'``), with its type; None when every one parses."""
    hints = typing.get_type_hints(config_cls)
    for name in option_names(config_cls):
        if not _parseable(hints[name]):
            return name, hints[name]
    return None


def _parseable(hint: Any, *, inside: bool = False) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (int, float, bool, str):
        return True
    if origin is Literal:
        return all(isinstance(arg, (str, int, float, bool)) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return all(arg is type(None) or _parseable(arg, inside=inside) for arg in args)
    if origin is tuple and not inside:  # tuple[X, ...] of a scalar type: comma-separated text
        return len(args) == 2 and args[1] is Ellipsis and _parseable(args[0], inside=True)
    return False


def build_config(config_cls: type, options: Mapping[str, Any]) -> Any:
    """Instantiate `config_cls` from `options`, parsing strings and naming any bad option."""
    hints = typing.get_type_hints(config_cls)
    known = option_names(config_cls)
    values = {}
    for name, value in options.items():
        if name not in known:
            raise UsageError(f"unknown option {name!r}; options are: {', '.join(known)}")
        values[name] = parse_value(name, value, hints[name])
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None


def parse_value(name: str, value: Any, hint: Any) -> Any:
    """Convert `value` (often a string from the command line) to the type `hint` of option `name`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(name, value, arg)
            except UsageError as error:
                errors.append(str(error))
        raise UsageError(errors[0] if errors else f"option {name!r} cannot be None")
    if origin is Literal:
        if value in args:
            return value
        spelled = [arg for arg in args if isinstance(value, str) and str(arg) == value.strip()]
        if spelled:  # the text of a number or bool choice from --set
            return spelled[0]
        raise UsageError(f"option {name!r} must be one of {', '.join(map(str, args))}, got {value!r}")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(parse_value(name, item, args[0]) for item in items if item != "")
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"option {name!r} expects true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise UsageError(f"option {name!r} expects {hint.__name__}, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise UsageError(f"option {name!r} expects {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise UsageError(f"option {name!r} expects int, got {value!r}")
        return number
    if hint is str:
        return str(value)
    return value
