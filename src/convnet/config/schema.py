"""The schema of a layer type: every key of the definition and parameter files with its value
type, default and constraint. docs/layers.md is written from these records, and a test fails when
a registered type or key lacks its documentation."""

from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

from . import values as v

REQUIRED = object()  # default of a key that must be given


@dataclass(frozen=True)
class Key:
    name: str                               # cuda-convnet's spelling; matched without case
    kind: str                               # for docs: int, float, bool, string, neuron, schedule
    parse: Callable[[str], Any]
    default: Any = REQUIRED
    per_input: bool = False                 # one value per input (or one for all)
    check: Optional[Callable[[Any], bool]] = None
    expected: str = ""                      # what `check` wants, for the error message
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def int_key(name, default=REQUIRED, *, minimum=None, per_input=False, doc=""):
    check = None if minimum is None else (lambda x, m=minimum: x >= m)
    return Key(name, "int", v.parse_int, default, per_input, check,
               f"an integer >= {minimum}" if minimum is not None else "", doc)


def float_key(name, default=REQUIRED, *, minimum=None, per_input=False, doc=""):
    check = None if minimum is None else (lambda x, m=minimum: x >= m)
    return Key(name, "float", v.parse_float, default, per_input, check,
               f"a number >= {minimum}" if minimum is not None else "", doc)


def bool_key(name, default=REQUIRED, *, doc=""):
    return Key(name, "bool", v.parse_bool, default, doc=doc)


def choice_key(name, choices, default=REQUIRED, *, doc=""):
    return Key(name, "string", v.parse_str, default, check=lambda x: x in choices,
               expected=" or ".join(repr(c) for c in choices), doc=doc)


def schedule_key(name, default=REQUIRED, *, per_input=False, doc=""):
    return Key(name, "schedule", v.parse_schedule, default, per_input, doc=doc)


@dataclass(frozen=True)
class LayerType:
    name: str                         # the `type=` string
    doc: str
    keys: Tuple[Key, ...] = ()        # definition-file keys beyond type/inputs/gpu/neuron
    params: Tuple[Key, ...] = ()      # parameter-file keys; non-empty: a section is required
    min_inputs: int = 1
    max_inputs: Optional[int] = 1     # None: any number
    takes_neuron: bool = True         # accepts the inline `neuron=` sugar
    supported: bool = True            # parsed, but refused with "not supported yet" when False
    weights: bool = False             # owns learned weights (conv, local, fc)
    is_cost: bool = False

    def key(self, name: str) -> Optional[Key]:
        for k in self.keys:
            if k.name.lower() == name.lower():
                return k
        return None

    def param(self, name: str) -> Optional[Key]:
        for k in self.params:
            if k.name.lower() == name.lower():
                return k
        return None
