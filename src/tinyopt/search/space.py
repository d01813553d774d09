"""The search space: named parameters with ranges, read from YAML and suggested through Optuna.

```yaml
search:
  width:   {type: int, low: 4, high: 32, log: true}     # filters of the first conv block
  depth:   {type: int, low: 1, high: 3}                 # conv blocks
  prune:   {type: float, low: 0.0, high: 0.75}          # structured pruning ratio
  bits:    {type: categorical, choices: [32, 8, 4]}     # 32 = float
  observer: {type: categorical, choices: [minmax, percentile, mse]}
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tinyopt.errors import ConfigError

DEFAULT_SPACE = {
    "width": {"type": "int", "low": 4, "high": 32, "log": True},
    "depth": {"type": "int", "low": 1, "high": 3},
    "kernel": {"type": "categorical", "choices": [3, 5]},
    "dense": {"type": "categorical", "choices": [0, 32, 64]},
    "prune": {"type": "float", "low": 0.0, "high": 0.75},
    "bits": {"type": "categorical", "choices": [32, 8, 4]},
    "observer": {"type": "categorical", "choices": ["minmax", "percentile", "mse"]},
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        return trial.suggest_categorical(self.name, list(self.choices))

    def sample(self, rng):
        """Uniform draw for the random-search baseline (same space, no model of it)."""
        if self.kind == "int":
            if self.log:
                return int(round(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))))
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.kind == "float":
            return float(rng.uniform(self.low, self.high))
        return self.choices[int(rng.integers(len(self.choices)))]


def parse_space(doc: dict | None, path: str | None = None) -> list[Param]:
    doc = DEFAULT_SPACE if doc is None else doc
    if not isinstance(doc, dict) or not doc:
        raise ConfigError("'search' must be a non-empty mapping of parameter name to range", path=path,
                          fix="write e.g. 'search: {width: {type: int, low: 4, high: 32}}'")
    params = []
    for name, spec in doc.items():
        where = f"search.{name}"
        if not isinstance(spec, dict):
            raise ConfigError("a parameter must be a mapping", path=path, where=where,
                              fix="write {type: int, low: 1, high: 4}")
        kind = spec.get("type")
        if kind in ("int", "float"):
            low, high = spec.get("low"), spec.get("high")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
                raise ConfigError("'low' and 'high' must be numbers", path=path, where=where,
                                  fix="give both bounds")
            if low > high:
                raise ConfigError(f"empty range: low {low} > high {high}", path=path, where=where,
                                  fix="make low ≤ high")
            if spec.get("log") and low <= 0:
                raise ConfigError("a log range needs low > 0", path=path, where=where, fix="raise 'low'")
            params.append(Param(name, kind, float(low), float(high), bool(spec.get("log", False)),
                                spec.get("step")))
        elif kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                raise ConfigError("empty 'choices'", path=path, where=where, fix="list at least one choice")
            params.append(Param(name, kind, choices=tuple(choices)))
        else:
            raise ConfigError(f"unknown parameter type {kind!r}", path=path, where=where,
                              fix="use int, float or categorical")
    return params
