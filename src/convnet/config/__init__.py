"""cuda-convnet's layer-definition and layer-parameter files: reading, checking, and turning them
into LayerSpec records (see docs/layers.md for every type and key)."""

from .errors import ConfigError, ConfigWarning
from .parse import parse
from .reader import parse_text, read
from .schema import REQUIRED, Key, LayerType
from .spec import LayerSpec, Location
from .types import REGISTRY
from .values import Schedule, parse_schedule

__all__ = ["ConfigError", "ConfigWarning", "parse", "parse_text", "read", "REQUIRED", "Key",
           "LayerType", "LayerSpec", "Location", "REGISTRY", "Schedule", "parse_schedule"]
