"""LayerSpec: one layer as the config files define it, frozen, with the file and line of every
key so that the graph can point at them when it finds a problem (a shape mismatch, say)."""

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional, Tuple


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self):
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class LayerSpec:
    name: str
    type: str
    inputs: Tuple[str, ...]
    values: Mapping[str, Any]                 # definition-file keys, canonical names
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    gpu: Optional[Tuple[int, ...]] = None     # devices from gpu= (None: inherited)
    where: Optional[Location] = None          # the [section] line
    key_lines: Mapping[str, Location] = field(default_factory=lambda: MappingProxyType({}))
    implicit: bool = False                    # inserted by the parser (inline neuron=)

    def __getitem__(self, key: str) -> Any:
        if key in self.values:
            return self.values[key]
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def location(self, key: Optional[str] = None) -> Optional[Location]:
        return self.key_lines.get(key, self.where) if key else self.where
