"""Value syntax of the config files: numbers, booleans, per-input lists and v2's learning-rate
schedules (docs/cuda-convnet-format.md, sections 1.1 and 2.3). Each parser takes the raw string and
returns the value or raises ValueError with what it expected; the caller adds file, line, section
and key. convnet.ops shares two of them: neuron specs (parse_neuron) and the normalisations' alpha
(norm_alpha)."""

import math
import re
from dataclasses import dataclass
from typing import List, Tuple

from .. import _core

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("an integer") from None


def parse_float(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(value):
        raise ValueError("a finite number")
    return value


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError("a boolean (1/0, true/false, yes/no, on/off)")


def parse_str(text: str) -> str:
    if not text.strip():
        raise ValueError("a non-empty value")
    return text.strip()


def split_list(text: str) -> List[str]:
    """Comma-separated entries; brackets protect commas (`tanh[1,2]`)."""
    items, depth, current = [], 0, ""
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    items.append(current.strip())
    return items


# ---- neurons and normalisations (shared with convnet.ops) ----------------------------------------

_NEURON_SPEC = re.compile(r"^\s*([a-z]+)\s*(?:\[([^\]]*)\])?\s*$")


def parse_neuron(spec: str, op: str = "neuron") -> Tuple[str, float, float]:
    """Parses a cuda-convnet neuron spec ("relu", "tanh[1.7159,0.6667]", "brelu[6]") into
    (name, a, b). Raises ValueError for unknown names or a wrong number of parameters; messages
    start with `op`."""
    if not isinstance(spec, str):
        raise ValueError(f"{op}: neuron must be a spec string like 'relu' or 'tanh[1,1]', "
                         f"got {spec!r}")
    m = _NEURON_SPEC.match(spec)
    if not m:
        raise ValueError(f"{op}: cannot parse neuron spec {spec!r} (expected name or name[a,b])")
    name, params = m.group(1), m.group(2)
    try:
        expected = _core.neuron_param_count(name)
    except ValueError as e:  # an unknown name: the core's message, under this op's name
        raise ValueError(f"{op}: {str(e).removeprefix('neuron: ')}") from None
    values = [] if params is None or params.strip() == "" else params.split(",")
    if len(values) != expected:
        raise ValueError(f"{op}: neuron '{name}' takes {expected} parameter(s) in brackets, "
                         f"got {spec!r}")
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise ValueError(f"{op}: neuron parameters must be numbers, got {spec!r}") from None
    defaults = {"tanh": (1.0, 1.0), "linear": (1.0, 0.0)}
    a, b = defaults.get(name, (1.0, 0.0))
    if numbers:
        a = numbers[0]
    if len(numbers) > 1:
        b = numbers[1]
    if name in ("brelu", "drelu") and a <= 0:
        raise ValueError(f"{op}: neuron '{name}' needs a positive parameter, got {spec!r}")
    return name, a, b


def norm_alpha(layer_type: str, scale: float, size: int) -> float:
    """The alpha of a cuda-convnet normalisation from its `scale`, which is per window element:
    scale/size for cmrnorm (size maps), scale/size^2 for rnorm and cnorm (size x size pixels)."""
    return scale / (size if layer_type == "cmrnorm" else size * size)


# ---- learning-rate schedules ----------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A learning rate as a function of training progress p in [0, 1] (v2's lr.cu)."""
    kind: str                  # const, linear, exp, dexp
    base: float
    tgt_factor: float = 1.0
    num_steps: int = 1

    def value(self, progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        if self.kind == "const":
            return self.base
        if self.kind == "linear":
            return self.base * (1 - p) + self.base / self.tgt_factor * p
        if self.kind == "exp":
            return self.base * (1.0 / self.tgt_factor) ** p
        # dexp: numSteps constant pieces from base down to base / tgtFactor; piece i holds
        # while p <= (i + 1) / numSteps
        step = min(max(math.ceil(p * self.num_steps) - 1, 0), self.num_steps - 1)
        return self.base * (1.0 / self.tgt_factor) ** (step / (self.num_steps - 1))


_SCHEDULE = re.compile(r"^\s*([A-Za-z]+)\s*\[(.*)\]\s*$")
_SCHEDULE_KEYS = {"const": {"base"}, "linear": {"base", "tgtfactor"},
                  "exp": {"base", "tgtfactor"}, "dexp": {"base", "tgtfactor", "numsteps"}}


def parse_schedule(text: str) -> Schedule:
    """A number (= const[base=number]) or name[key=value;...]: const[base],
    linear[base;tgtFactor], exp[base;tgtFactor], dexp[base;tgtFactor;numSteps]."""
    try:
        return Schedule("const", parse_float(text))
    except ValueError:
        pass
    m = _SCHEDULE.match(text)
    expected = "a number or a schedule such as dexp[base=0.01;tgtFactor=250;numSteps=4]"
    if not m:
        raise ValueError(expected)
    kind = m.group(1).lower()
    if kind not in _SCHEDULE_KEYS:
        raise ValueError(f"a schedule named one of {sorted(_SCHEDULE_KEYS)}")
    values = {}
    for part in filter(None, (p.strip() for p in m.group(2).split(";"))):
        key, eq, val = part.partition("=")
        if not eq:
            raise ValueError(f"key=value pairs inside {kind}[...]")
        values[key.strip().lower()] = val.strip()
    if set(values) != _SCHEDULE_KEYS[kind]:
        raise ValueError(f"{kind}[...] with exactly the keys "
                         f"{sorted(_SCHEDULE_KEYS[kind])} (any case)")
    base = parse_float(values["base"])
    tgt = parse_float(values.get("tgtfactor", "1"))
    steps = parse_int(values.get("numsteps", "1"))
    if kind != "const" and tgt <= 0:
        raise ValueError("tgtFactor > 0")
    if kind == "dexp" and steps < 2:
        raise ValueError("numSteps >= 2")
    return Schedule(kind, base, tgt, steps)
