"""From cuda-convnet's two files to a list of LayerSpec in topological order, with upstream's
semantics (docs/cuda-convnet-format.md, sections 1-2): section order is the graph order, `inputs=`
names earlier layers, an inline `neuron=` becomes a layer `<name>_neuron` that the layer's consumers
read instead, every non-cost layer must be consumed, and the layers that learn or normalise need a
section in the parameter file. Unknown keys, which upstream ignored silently, are a warning that
names the closest known key (an error with strict=True)."""

import difflib
import warnings
from types import MappingProxyType
from typing import Dict, List, Optional

from . import reader
from .errors import ConfigError, ConfigWarning
from .schema import Key, LayerType
from .spec import LayerSpec, Location
from .types import REGISTRY
from .values import norm_alpha, parse_neuron

_COMMON = {"type", "inputs", "gpu", "neuron"}


def _known_types() -> str:
    return ", ".join(sorted(n for n, t in REGISTRY.items() if t.supported))


def _warn_or_fail(section: reader.Section, entry: reader.Entry, known, strict: bool, what: str):
    close = difflib.get_close_matches(entry.key.lower(), [k.lower() for k in known], n=1)
    hint = ""
    if close:
        spelled = next(k for k in known if k.lower() == close[0])
        hint = f"; did you mean '{spelled}'?"
    message = f"unknown key for {what}{hint}"
    if strict:
        raise section.error(message + " (an error under --strict)", key=entry.key)
    warnings.warn(f"{section.file}:{entry.line}: [{section.name}] {entry.key}: {message} "
                  "(ignored, as cuda-convnet did)", ConfigWarning, stacklevel=4)


def _parse_key(section: reader.Section, key: Key, count: int):
    entry = section.get(key.name)
    if entry is None:
        if key.required:
            raise section.error(f"missing required key '{key.name}'", expected=key.kind)
        if key.per_input and key.default is not None:
            return [key.default] * count
        return key.default
    try:
        value = (key.parse(entry.value) if not key.per_input
                 else [key.parse(x) for x in _per_input(entry.value, count)])
    except ValueError as e:
        raise section.error("bad value", key=key.name, expected=str(e), found=entry.value) from None
    items = value if key.per_input else [value]
    if key.check is not None and not all(key.check(x) for x in items):
        raise section.error("bad value", key=key.name, expected=key.expected or key.kind,
                            found=entry.value)
    return value


def _per_input(text: str, count: int):
    from .values import split_list
    parts = split_list(text)
    if len(parts) == 1 and count > 1:
        return parts * count  # v2: one value applies to every input
    if len(parts) != count:
        raise ValueError(f"{count} comma-separated value(s), one per input")
    return parts


def _parse_gpu(section: reader.Section):
    entry = section.get("gpu")
    if entry is None:
        return None
    try:
        gpus = tuple(int(x) for x in entry.value.split(","))
    except ValueError:
        raise section.error("bad value", key="gpu", expected="device indices like 0 or 0,1",
                            found=entry.value) from None
    if any(g < 0 for g in gpus):
        raise section.error("bad value", key="gpu", expected="indices >= 0", found=entry.value)
    return gpus


def _neuron_spec(section: reader.Section, key: str = "neuron") -> Optional[str]:
    entry = section.get(key)
    if entry is None:
        return None
    try:
        parse_neuron(entry.value)
    except ValueError as e:
        raise section.error(str(e).removeprefix("neuron: "), key=key, found=entry.value) from None
    return entry.value.strip()


def _locations(section: reader.Section, layer_type: LayerType) -> Dict[str, Location]:
    out = {}
    for entry in section.entries.values():
        canonical = layer_type.key(entry.key) or layer_type.param(entry.key)
        out[canonical.name if canonical else entry.key] = Location(section.file, entry.line)
    return out


def parse_definitions(cfg: reader.ConfigFile, strict: bool = False) -> List[LayerSpec]:
    specs: List[LayerSpec] = []
    output_of: Dict[str, str] = {}  # layer name -> the layer that carries its output
    for section in cfg.sections:
        type_entry = section.get("type")
        if type_entry is None:
            raise section.error("missing required key 'type'", expected="one of: " +
                                _known_types())
        t = REGISTRY.get(type_entry.value.strip())
        if t is None:
            raise section.error(f"unknown layer type; valid types: {_known_types()}", key="type",
                                found=type_entry.value)
        if not t.supported:
            raise section.error(f"layer type '{t.name}' is not supported yet", key="type")

        inputs_entry = section.get("inputs")
        names = [] if inputs_entry is None else [n.strip() for n in inputs_entry.value.split(",")]
        if t.max_inputs == 0 and names:
            raise section.error(f"a {t.name} layer takes no inputs", key="inputs",
                                found=inputs_entry.value)
        if t.min_inputs > 0 and not names:
            raise section.error("missing required key 'inputs'",
                                expected="comma-separated names of earlier layers")
        if len(names) < t.min_inputs or (t.max_inputs is not None and len(names) > t.max_inputs):
            bound = (f"{t.min_inputs}" if t.max_inputs == t.min_inputs else
                     f"{t.min_inputs} or more" if t.max_inputs is None else
                     f"{t.min_inputs} to {t.max_inputs}")
            raise section.error(f"a {t.name} layer takes {bound} input(s)", key="inputs",
                                found=inputs_entry.value if inputs_entry else "")
        resolved = []
        for n in names:
            if not n:
                raise section.error("empty name in the inputs list", key="inputs",
                                    found=inputs_entry.value)
            if n == section.name:
                raise section.error("a layer cannot be its own input", key="inputs", found=n)
            if n not in output_of:
                later = cfg.section(n) is not None
                raise section.error(f"input layer '{n}' is not defined" +
                                    (" before this layer (layers must be listed in order)"
                                     if later else ""), key="inputs", found=n)
            resolved.append(output_of[n])

        known = [k.name for k in t.keys] + ["type", "inputs", "gpu"] + (
            ["neuron"] if t.takes_neuron or t.name == "neuron" else [])
        for entry in section.entries.values():
            if entry.key.lower() not in {k.lower() for k in known}:
                if entry.key.lower() == "neuron":
                    raise section.error(f"a {t.name} layer takes no neuron=", key=entry.key)
                _warn_or_fail(section, entry, known, strict, f"type={t.name}")

        values = {k.name: _parse_key(section, k, len(names)) for k in t.keys}
        if t.name == "neuron":
            values["neuron"] = _neuron_spec(section)
        for refused in ("initWFunc", "initBFunc", "weightSource"):
            if values.get(refused) is not None:
                raise section.error(f"'{refused}' is not supported yet", key=refused)
        if values.get("randSparse"):
            raise section.error("random sparse connectivity is not supported", key="randSparse")
        if values.get("pool") == "maxabs":
            raise section.error("pool=maxabs is not supported yet", key="pool")
        gpu = _parse_gpu(section)
        where = Location(section.file, section.line)
        spec = LayerSpec(section.name, t.name, tuple(resolved), MappingProxyType(values), gpu=gpu,
                         where=where, key_lines=MappingProxyType(_locations(section, t)))
        specs.append(spec)
        output_of[section.name] = section.name

        neuron = _neuron_spec(section) if t.takes_neuron else None
        if neuron is not None and neuron != "ident":
            implicit = f"{section.name}_neuron"
            suffix = 1
            while cfg.section(implicit) is not None or implicit in output_of:
                implicit, suffix = f"{section.name}_neuron.{suffix}", suffix + 1
            specs.append(LayerSpec(implicit, "neuron", (section.name,),
                                   MappingProxyType({"neuron": neuron}), gpu=gpu,
                                   where=spec.location("neuron"),
                                   key_lines=MappingProxyType({}), implicit=True))
            output_of[section.name] = implicit
            output_of[implicit] = implicit

    # A layer nobody reads is a mistake in a net with a cost (the cost is the net's end); in a net
    # without one (built for predict and features) such layers are its outputs.
    consumed = {i for s in specs for i in s.inputs}
    has_cost = any(REGISTRY[s.type].is_cost for s in specs)
    for s in specs:
        if has_cost and s.name not in consumed and not REGISTRY[s.type].is_cost:
            raise ConfigError(f"layer '{s.name}' of type '{s.type}' is unused: no layer lists "
                              "it in inputs=", file=s.where.file, line=s.where.line,
                              section=s.name)
    return specs


def apply_params(specs: List[LayerSpec], cfg: reader.ConfigFile,
                 strict: bool = False) -> List[LayerSpec]:
    """Attaches each layer's parameter-file section; derives the normalisation alpha and k."""
    out = []
    names = {s.name for s in specs}
    for section in cfg.sections:
        if section.name not in names:
            warnings.warn(f"{section.file}:{section.line}: [{section.name}] no layer of that name "
                          "in the definition file; section ignored", ConfigWarning, stacklevel=3)
    for s in specs:
        t = REGISTRY[s.type]
        if not t.params:
            out.append(s)
            continue
        section = cfg.section(s.name)
        if section is None:
            raise ConfigError(f"layer '{s.name}' of type '{s.type}' requires a section "
                              f"[{s.name}] in the parameter file, but none is given "
                              f"(keys: {', '.join(k.name for k in t.params)})", file=cfg.path,
                              section=s.name)
        known = [k.name for k in t.params]
        for entry in section.entries.values():
            if entry.key.lower() not in {k.lower() for k in known}:
                _warn_or_fail(section, entry, known, strict, f"the parameters of type={t.name}")
        params = {k.name: _parse_key(section, k, max(len(s.inputs), 1)) for k in t.params}
        if s.type in ("cmrnorm", "rnorm", "cnorm"):
            size = s.values["size"]
            params["alpha"] = norm_alpha(s.type, params["scale"], size)
            params["k"] = params["minDiv"]
        if s.type in ("dropout", "dropout2") and not 0 < params["keep"] <= 1:
            raise section.error("bad value", key="keep", expected="a probability in (0, 1]",
                                found=section.get("keep").value)
        key_lines = dict(s.key_lines)
        key_lines.update(_locations(section, t))
        out.append(LayerSpec(s.name, s.type, s.inputs, s.values, MappingProxyType(params), s.gpu,
                             s.where, MappingProxyType(key_lines), s.implicit))
    return out


def parse(layers, params=None, *, strict: bool = False) -> List[LayerSpec]:
    """Reads a layer-definition file and, when given, its layer-parameter file (paths, or
    reader.ConfigFile objects). Raises ConfigError; warns with ConfigWarning."""
    defs = layers if isinstance(layers, reader.ConfigFile) else reader.read(layers)
    if not defs.sections:
        raise ConfigError("no layers defined", file=defs.path)
    specs = parse_definitions(defs, strict)
    if params is not None:
        prm = params if isinstance(params, reader.ConfigFile) else reader.read(params)
        specs = apply_params(specs, prm, strict)
    return specs
