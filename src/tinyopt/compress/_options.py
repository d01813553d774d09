"""Options dataclasses of the compression modules (``ClusterConfig``, ``DistillConfig``) as plain dicts."""

from __future__ import annotations

from dataclasses import asdict
from typing import TypeVar

from tinyopt._suggest import hint
from tinyopt.errors import ConfigError

_O = TypeVar("_O", bound="Options")


class Options:
    """Mixin for an options dataclass: ``to_dict`` and ``from_dict``, an unknown name refused.

    ``_subject`` is what the options configure: the word in "unknown cluster option 'x'" and where
    the error points.
    """

    _subject = "compression"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls: type[_O], d: dict) -> _O:
        names = cls.__dataclass_fields__
        unknown = set(d) - set(names)
        if unknown:
            name = sorted(unknown)[0]
            raise ConfigError(f"unknown {cls._subject} option '{name}'{hint(name, names)}", where=cls._subject,
                              fix=f"options: {', '.join(names)}")
        return cls(**d)
