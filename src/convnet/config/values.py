"""Value syntax of the config files: numbers, booleans, per-input lists and v2's learning-rate
schedules (CUDA_CONVNET.md section 3.3). Each parser takes the raw string and returns the value or
raises ValueError with what it expected; the caller adds file, line, section and key."""

import math
import re
from dataclasses import dataclass
from typing import List

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
