"""Importing cuda-convnet's own checkpoints (v1 and v2).

A cuda-convnet checkpoint is a Python 2 pickle `{"model_state": {"layers": ..., "epoch": ...,
"batchnum": ...}, "op": <options object>}` (docs/cuda-convnet-format.md, section 6.3); `layers`
is a list of layer dicts (v1) or a dict name -> layer dict (v2), each weight layer holding lists
`weights` and `weightsInc` (one matrix per input) and `biases`, `biasesInc`. The layer definitions
come from the user's own cfg file (the one the checkpoint was trained with); each weight layer's
matrices are matched by name and converted from cuda-convnet's layouts
(docs/cuda-convnet-format.md, section 6.4) to ours:

    fc     inputSize x outputs                        -> (outputs, inputs): the transpose
    conv   (channels/groups * size^2) x filters        -> (filters, channels/groups, size, size)
           rows ordered channel, then y, then x
    local  (modules * channels/groups * size^2) x filters, module-major
                                                        -> (oy, ox, filters, channels/groups, size,
                                                           size)
    biases filters x 1 (shared) or (filters * modules) x 1, filter-major -> (filters[, oy, ox])

The momenta (`weightsInc`, `biasesInc`) become our velocities: cuda-convnet's update
inc = mom*inc - wc*eps*W + eps*(-grad) is ours, so no sign changes.
"""

import os
import pickle
import re
from typing import Dict, Tuple

import numpy as np

from . import checkpoint


class _Opaque:
    """Stands in for any class the pickle names (cuda-convnet's option parser objects), so that
    unpickling needs none of cuda-convnet's Python 2 modules."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["_state"] = state


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] in ("numpy", "copy_reg", "copyreg", "__builtin__", "builtins",
                                    "collections", "_codecs"):
            if module == "copy_reg":
                module = "copyreg"
            if module == "__builtin__":
                module = "builtins"
            return super().find_class(module, name)
        return _Opaque


def is_cuda_convnet_checkpoint(path) -> bool:
    """A directory of cuda-convnet checkpoints, or a pickle file (ours are zip archives)."""
    path = str(path)
    if os.path.isdir(path):
        return bool(_checkpoint_files(path))
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head[:1] == b"\x80" or head[:1] in (b"(", b"}")


def _checkpoint_files(directory):
    names = [n for n in os.listdir(directory) if re.fullmatch(r"\d+\.\d+", n)]

    def natural(n):
        epoch, batch = n.split(".")
        return int(epoch), int(batch)
    return sorted(names, key=natural)


def read(path) -> dict:
    """The model_state of a cuda-convnet checkpoint file, or of the latest checkpoint
    (natural order of '<epoch>.<batch>' names) in a directory, as upstream's -f does."""
    path = str(path)
    if os.path.isdir(path):
        files = _checkpoint_files(path)
        if not files:
            raise checkpoint.CheckpointError(f"{path}: no cuda-convnet checkpoint "
                                             "('<epoch>.<batch>' files) in this directory")
        path = os.path.join(path, files[-1])
    try:
        with open(path, "rb") as f:
            data = _Unpickler(f, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError) as e:
        raise checkpoint.CheckpointError(f"{path}: not a readable cuda-convnet checkpoint "
                                         f"({type(e).__name__}: {e})") from None
    state = data.get("model_state") if isinstance(data, dict) else None
    if not isinstance(state, dict) or "layers" not in state:
        raise checkpoint.CheckpointError(f"{path}: a cuda-convnet checkpoint is a dict with "
                                         "'model_state' holding 'layers'; this file has none")
    layers = state["layers"]
    if isinstance(layers, (list, tuple)):
        layers = {layer["name"]: layer for layer in layers}
    state = dict(state, layers=layers, path=path)
    return state


def _matrix(value, what):
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else value
    a = np.asarray(value)
    if a.dtype == object:
        raise checkpoint.CheckpointError(f"{what}: expected a numeric matrix")
    return a.astype(np.float64, copy=False)


def convert(spec, kind: str, index: int, matrix: np.ndarray, ours_shape, where: str):
    """One cuda-convnet matrix (kind 'weights' or 'biases', index-th input) in our layout."""
    m = np.asarray(matrix, dtype=np.float64)
    size = int(np.prod(ours_shape))
    if m.size != size:
        raise checkpoint.CheckpointError(
            f"{where}: layer '{spec.name}' {kind}{'' if index == 0 else f'[{index}]'} has "
            f"{m.size} values {m.shape}, the config's layer needs {size} {tuple(ours_shape)}")
    if kind == "biases":
        return m.reshape(ours_shape)
    if spec.type == "fc":
        outputs, inputs = ours_shape
        return m.reshape(inputs, outputs).T
    if spec.type == "conv":
        filters = ours_shape[0]
        return m.reshape(-1, filters).T.reshape(ours_shape)
    if spec.type == "local":
        oy, ox, filters = ours_shape[:3]
        per_module = m.reshape(oy * ox, -1, filters)
        return per_module.transpose(0, 2, 1).reshape(ours_shape)
    raise checkpoint.CheckpointError(f"{where}: layer '{spec.name}' of type {spec.type} has no "
                                     "weights to import")


_PARAM_NAME = re.compile(r"(weights|biases)(?:\.(\d+))?")


def _param_source(name: str, layer_name: str):
    """('weights', input index) or ('biases', 0) for our parameter name "<layer>.weights",
    "<layer>.weights.<i>" or "<layer>.biases" of this layer; None for another layer's."""
    if not name.startswith(layer_name + "."):
        return None
    match = _PARAM_NAME.fullmatch(name[len(layer_name) + 1:])
    return None if match is None else (match[1], int(match[2] or 0))


def _array(layer: dict, spec, key: str, index: int, shape, where: str) -> np.ndarray:
    """Matrix `key` ("weights", "biasesInc", ...) of the checkpoint's layer dict for the
    index-th input of `spec`, in our layout."""
    kind = "biases" if key.startswith("biases") else "weights"
    if key not in layer:
        if key.endswith("Inc"):   # a checkpoint without momenta: start from zero
            return np.zeros(shape)
        raise checkpoint.CheckpointError(f"{where}: layer '{spec.name}' has no '{key}'")
    value = layer[key]
    if kind == "weights":
        if not isinstance(value, (list, tuple)) or index >= len(value):
            raise checkpoint.CheckpointError(
                f"{where}: layer '{spec.name}' '{key}' holds "
                f"{len(value) if isinstance(value, (list, tuple)) else 1} matrices; "
                f"the config's layer has an input {index}")
        value = value[index]
    return convert(spec, kind, index, _matrix(value, where), shape, where)


def read_state_arrays(path, specs, shapes: Dict[str, Tuple[int, ...]]) -> Dict[str, np.ndarray]:
    """The weights and momenta of a cuda-convnet checkpoint in our layouts, as Net.state_arrays
    gives them ("param/<name>", "velocity/<name>"), for the net of these LayerSpec records whose
    parameters have these shapes (Net.param_shapes); its layers are matched by name. A checkpoint
    without momenta gives zero velocities."""
    state = read(path)
    where = state["path"]
    layers = state["layers"]
    weight_specs = [s for s in specs if s.type in ("conv", "local", "fc")]
    missing = [s.name for s in weight_specs if s.name not in layers]
    if missing:
        raise checkpoint.CheckpointError(
            f"{where}: the config's weight layers {', '.join(missing)} are not in the "
            f"checkpoint (it has {', '.join(sorted(layers))})")
    arrays = {}
    for spec in weight_specs:
        for name, shape in shapes.items():
            param = _param_source(name, spec.name)
            if param is None:
                continue
            kind, index = param
            for key, ours in ((kind, "param"), (kind + "Inc", "velocity")):
                arrays[f"{ours}/{name}"] = _array(layers[spec.name], spec, key, index,
                                                  tuple(shape), where)
    return arrays
