"""convnet.Net: a network built from cuda-convnet config files (or LayerSpec records), run by the
C++ graph in convnet._core. Python only converts: every forward, backward and update runs in C++
with the GIL released.

Parameters follow the PyTorch/ONNX conventions: conv weights (filters, channels/groups, kh, kw),
local weights (OH, OW, filters, channels/groups, kh, kw), fc weights (outputs, inputs) with inputs
ordered channel, row, column; names are "<layer>.weights", "<layer>.weights.<i>" for the i-th
input of a multi-input layer, and "<layer>.biases".
"""

from collections.abc import Mapping, MutableMapping
import operator
import os
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core, checkpoint, cuda_convnet_checkpoint, runs
from .config import ConfigError, LayerSpec, Schedule
from .config import parse as parse_config
from .config import parse_text, read
from .config.values import parse_neuron
from .layers import render
from .replicas import replica_count, replica_placement, replicated_step

WEIGHT_TYPES = ("conv", "local", "fc")
FEATURES_BATCH = 128   # images per forward pass when features() is given more
DataShapes = Mapping[str, Sequence[int]]   # data layer name -> sample shape


def _layer_dict(spec: LayerSpec, index_of: Dict[str, int], input_shape,
                data_shapes: DataShapes) -> dict:
    numbers, strings = {}, {}
    for key, value in list(spec.values.items()) + list(spec.params.items()):
        if value is None or isinstance(value, Schedule):
            continue
        if isinstance(value, (list, tuple)):
            if value and isinstance(value[0], Schedule):
                continue
            numbers[key] = [float(v) for v in value]
        elif isinstance(value, (bool, int, float)):
            numbers[key] = [float(value)]
        elif isinstance(value, str):
            strings[key] = value
    if spec.type == "neuron":
        name, a, b = parse_neuron(spec["neuron"])
        strings["neuron"] = name
        numbers["neuron_a"], numbers["neuron_b"] = [a], [b]
    if spec.type == "data":
        shape = spec.get("shape")
        if shape is None:
            shape = data_shapes.get(spec.name)
        if shape is None and spec["dataIdx"] == 0 and input_shape is not None:
            shape = tuple(input_shape)
        if shape is None and spec["dataIdx"] != 0:
            shape = (1,)  # labels: one class index per sample
        if shape is None:
            where = spec.where
            raise ConfigError("the data layer does not state its sample shape: add shape=C,H,W "
                              "or pass input_shape=(C, H, W)", file=where.file if where else None,
                              line=where.line if where else None, section=spec.name)
        numbers["shape"] = [float(d) for d in shape]
    return {"name": spec.name, "type": spec.type, "inputs": [index_of[i] for i in spec.inputs],
            "numbers": numbers, "strings": strings}


class Params(MutableMapping):
    """The net's parameters by name; reading gives a copy, assigning copies into the net."""

    def __init__(self, net: "Net"):
        self._net = net

    def _locate(self, key):
        try:
            return self._net._param_index[key]
        except KeyError:
            raise KeyError(f"no parameter {key!r}; the net has: "
                           f"{', '.join(self._net._param_index)}") from None

    def __getitem__(self, key):
        i, j = self._locate(key)
        return self._net._core.param_get(i, j, 0)

    def __setitem__(self, key, value):
        i, j = self._locate(key)
        self._net._set(i, j, 0, value, key)

    def __delitem__(self, key):
        raise TypeError("parameters cannot be removed")

    def __iter__(self):
        return iter(self._net._param_index)

    def __len__(self):
        return len(self._net._param_index)


class Net:
    """A network of LayerSpec records run by the C++ graph."""

    def __init__(self, specs: Optional[Sequence[LayerSpec]] = None, *, layers=None,
                 input_shape=None, dtype: str = "float32", seed: int = 0,
                 source: Optional[dict] = None, device: str = "cpu",
                 data_shapes: Optional[DataShapes] = None):
        """specs: LayerSpec records (from convnet.config.parse), or layers: builders from
        convnet.layers. A data layer that states no shape= takes its shape from data_shapes
        ({layer name: shape}), else input_shape for images (dataIdx=0) and 1 for labels."""
        if (specs is None) == (layers is None):
            raise TypeError("Net() takes LayerSpec records or layers=[builders], not both")
        if layers is not None:
            layers_text, params_text = render(layers)
            source = {"layers": layers_text, "layers_path": None, "params": params_text,
                      "params_path": None}
            specs = parse_config(parse_text(layers_text, "<layers>"),
                                 parse_text(params_text, "<params>"))
        self.specs: List[LayerSpec] = list(specs)
        # The config text the net came from, kept in checkpoints ({"layers": ..., "params": ...}).
        self.source = source
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.lr_scale = 1.0  # multiplies every learning rate (the paper's divide-by-10 steps)
        self.dtype = np.dtype(dtype)
        self.seed = int(seed)
        self.step = 0
        # The preprocessing of the data the net was trained on (set by the trainer, kept in
        # checkpoints): {"provider", "image_shape", "label_names"} and the mean image, so that
        # predict() can take image files.
        self.data_info: Optional[dict] = None
        self.data_mean: Optional[np.ndarray] = None
        index_of = {s.name: i for i, s in enumerate(self.specs)}
        self._spec_index = index_of
        data_shapes = dict(data_shapes or {})
        self._layer_dicts = [_layer_dict(s, index_of, input_shape, data_shapes)
                             for s in self.specs]
        if self.input_shape is None:
            # The image shape the data gave, kept in checkpoints so that the net rebuilds
            # without its data (Net.load).
            self.input_shape = next((tuple(int(d) for d in data_shapes[s.name])
                                     for s in self.specs if s.type == "data"
                                     and s["dataIdx"] == 0 and s.get("shape") is None
                                     and s.name in data_shapes), None)
        where = self.placement
        # Replicated layers (gpu=0,1,...): one layer graph per replica (convnet.replicas).
        self.replicas = replica_count(self.specs, where)
        self._placements = replica_placement(self.specs, where, self.replicas)
        self.logical_devices = 1 + max(max(p) for p in self._placements)
        self._cores = self._build_cores(["cpu"] * self.logical_devices)
        # How the last step summed the replicas' gradients across devices ("nccl", "host",
        # "local"); None before a replicated step.
        self.gradient_sum_path: Optional[str] = None
        self._progress = 0.0
        self._param_index = {}
        for i, s in enumerate(self.specs):
            for j in range(self._core.param_count(i)):
                self._param_index[f"{s.name}.{self._core.param_name(i, j)}"] = (i, j)
        self.params = Params(self)
        self._initialise()
        self.set_progress(0.0)
        if str(device) != "cpu":
            self.to(device)

    def _build_cores(self, devices) -> list:
        """The C++ layer graph of each replica on the physical devices (one per logical one)."""
        return [_core.Net([dict(d, device=dev) for d, dev in zip(self._layer_dicts, placement)],
                          dtype=str(self.dtype), devices=devices)
                for placement in self._placements]

    @property
    def _core(self):
        """The first replica's layer graph: the net itself without replicated layers; with
        them, the graph that tests, predicts and reports the weights (all hold the same)."""
        return self._cores[0]

    @property
    def device(self) -> str:
        """Where the parameters and activations live: "cpu" or "cuda:N"."""
        return self._core.device

    def to(self, device) -> "Net":
        """Moves the net (parameters, momenta, activations) in place and returns it. device:
        "cpu", "cuda:N", or one device per logical device of the config's gpu= keys (the
        paper's two columns on ["cuda:0", "cuda:1"]); a single device takes every logical one.
        The GPU path runs float32."""
        names = [device] if isinstance(device, (str, _core.Device)) else list(device)
        names = ["cuda:0" if str(d) == "cuda" else str(d) for d in names]
        if len(names) == 1:
            names = names * self.logical_devices
        if len(names) != self.logical_devices:
            raise ValueError(f"Net.to: the config places layers on {self.logical_devices} "
                             f"logical device(s) (gpu=); got {len(names)} devices")
        if names == self._core.devices:
            return self
        for name in names:
            if name == "cpu":
                continue
            if not _core.built_with_cuda():
                raise RuntimeError(f"Net.to({name!r}): this build of convnet has no CUDA kernels "
                                   "(built without nvcc), so it cannot use a GPU; reinstall "
                                   "with nvcc on the PATH (README, Build options)")
            if int(name.split(":")[1]) >= _core.cuda_device_count():
                raise RuntimeError(f"Net.to({name!r}): this machine has "
                                   f"{_core.cuda_device_count()} GPU(s)")
        arrays, frozen = self.state_arrays(), self.frozen
        self._cores = self._build_cores(names)
        self.load_state_arrays(arrays, f"Net.to({names})")
        self.freeze(frozen)
        self.set_progress(self._progress)
        return self

    @property
    def devices(self) -> List[str]:
        """The physical device of each logical device (cfg gpu=0, 1, ...)."""
        return list(self._core.devices)

    def _on_cpu(self) -> bool:
        """Every layer on the CPU, where the parameters can be read and written in place."""
        return all(d == "cpu" for d in self._core.devices)

    def _set(self, i, j, kind, value, what):
        shape = tuple(self._core.param_shape(i, j))
        value = np.ascontiguousarray(value, dtype=self.dtype)
        if value.shape != shape:
            if value.size == 1:   # a scalar such as initB
                value = np.full(shape, value.reshape(()), self.dtype)
            else:
                raise ValueError(f"{what}: expected shape {shape}, got {value.shape}")
        for core in self._cores:
            core.param_set(i, j, kind, value)

    @classmethod
    def from_cfg(cls, layers_path, params_path=None, input_shape=None, *, seed: int = 0,
                 dtype: str = "float32", strict: bool = False,
                 data_shapes: Union[None, DataShapes, Callable[[List[LayerSpec]], DataShapes]]
                 = None) -> "Net":
        """Builds the net of a layer-definition file and its layer-parameter file. input_shape is
        the (C, H, W) of the image data layer when the config does not state it. data_shapes
        gives data layers without shape= theirs, as cuda-convnet's data providers did: a
        {layer name: shape} mapping, or a function of the parsed layers that returns one (e.g.
        a partial of convnet.data.data_layer_shapes, which reads them from a dataset)."""
        layers = read(layers_path)
        params = read(params_path) if params_path is not None else None
        source = {"layers": layers.text, "layers_path": str(layers_path),
                  "params": params.text if params else None,
                  "params_path": str(params_path) if params_path is not None else None}
        specs = parse_config(layers, params, strict=strict)
        if callable(data_shapes):
            data_shapes = data_shapes(specs)
        return cls(specs, input_shape=input_shape, dtype=dtype, seed=seed, source=source,
                   data_shapes=data_shapes)

    @classmethod
    def from_cuda_convnet(cls, checkpoint_path, layers_path, params_path=None, input_shape=None,
                          *, seed: int = 0, dtype: str = "float32", data_shapes=None) -> "Net":
        """Builds the net of cuda-convnet config files and loads the weights and momenta of one of
        cuda-convnet's own checkpoints (a file, or a run directory: its latest file), converting
        its matrix layouts to ours (convnet.cuda_convnet_checkpoint). data_shapes: as in
        from_cfg."""
        net = cls.from_cfg(layers_path, params_path, input_shape, dtype=dtype, seed=seed,
                           data_shapes=data_shapes)
        arrays = cuda_convnet_checkpoint.read_state_arrays(checkpoint_path, net.specs,
                                                           net.param_shapes())
        net.load_state_arrays(arrays, str(checkpoint_path))
        return net

    # ---- saving ------------------------------------------------------------------------------

    def state_arrays(self, *, views: bool = False) -> Dict[str, np.ndarray]:
        """Every parameter and its momentum, as checkpoints store them: copies, or with views=True
        on a CPU net views of the live values, valid until the next step changes them (what a
        save that writes them at once needs: AlexNet's are 488 MB)."""
        out = {}
        live = views and self._on_cpu()
        for name, (i, j) in self._param_index.items():
            if live:
                out[f"param/{name}"] = self._core.param_value(i, j)
                out[f"velocity/{name}"] = self._core.param_velocity(i, j)
            else:
                out[f"param/{name}"] = self._core.param_get(i, j, 0)
                out[f"velocity/{name}"] = self._core.param_get(i, j, 2)
        if self.data_mean is not None:
            out["data/mean"] = self.data_mean
        return out

    def load_state_arrays(self, arrays: Dict[str, np.ndarray], what: str = "checkpoint") -> None:
        for name, (i, j) in self._param_index.items():
            shape = tuple(self._core.param_shape(i, j))
            for kind, code in (("param", 0), ("velocity", 2)):
                key = f"{kind}/{name}"
                if key not in arrays:
                    raise checkpoint.CheckpointError(f"{what}: no {kind} for {name}")
                if arrays[key].shape != shape:
                    raise checkpoint.CheckpointError(
                        f"{what}: {name} has shape {arrays[key].shape}, the net needs {shape}")
                self._set(i, j, code, arrays[key], name)

    def checkpoint_meta(self) -> dict:
        if self.source is None:
            raise ValueError("only a net built from config files (Net.from_cfg) can be saved")
        return {"source": self.source, "input_shape": self.input_shape, "dtype": str(self.dtype),
                "seed": self.seed, "step": self.step, "lr_scale": self.lr_scale,
                "data": self.data_info, "frozen": self.frozen}

    def save(self, path) -> None:
        """Writes the net (config, parameters, momenta, step) to one file, atomically."""
        checkpoint.save(path, {"net": self.checkpoint_meta()}, self.state_arrays(views=True))

    @classmethod
    def load(cls, path, params_path=None) -> "Net":
        """Opens a file from Net.save or a training checkpoint (or a run folder: its
        checkpoint.npz). The layer definitions come from the file; the parameter file is re-read
        from params_path when given (as cuda-convnet re-reads it on resume), else the copy in
        the file is used."""
        if os.path.isdir(path):
            path = runs.checkpoint_path(path)
        meta, arrays = checkpoint.load(path)
        m = meta["net"]
        source = dict(m["source"])
        layers = parse_text(source["layers"], source.get("layers_path") or "<checkpoint>")
        if params_path is not None:
            params = read(params_path)
            source.update(params=params.text, params_path=str(params_path))
        elif source.get("params") is not None:
            params = parse_text(source["params"], source.get("params_path") or "<checkpoint>")
        else:
            params = None
        net = cls(parse_config(layers, params), input_shape=m.get("input_shape"),
                  dtype=m["dtype"], seed=m["seed"], source=source)
        net.load_state_arrays(arrays, str(path))
        net.step, net.lr_scale = int(m["step"]), float(m.get("lr_scale", 1.0))
        net.data_info = m.get("data")
        net.freeze(m.get("frozen") or [])
        if "data/mean" in arrays:
            net.data_mean = np.asarray(arrays["data/mean"], np.float32)
        net.set_progress(0.0)
        return net

    def to_onnx(self, path) -> str:
        """Writes the net's test-time computation (images in, Net.predict's output out) as an
        ONNX model; see convnet.export. Needs the onnx package."""
        from .export import to_onnx   # imports onnx, an optional dependency
        return to_onnx(self, path)

    # ---- transfer learning -------------------------------------------------------------------

    @property
    def frozen(self) -> List[str]:
        """The layers whose weights are frozen (freeze), in net order."""
        return [s.name for i, s in enumerate(self.specs) if self._core.frozen(i)]

    def freeze(self, layers: Sequence[str], frozen: bool = True) -> None:
        """Freezes the named layers' weights and biases (frozen=False thaws them): training leaves
        them bit-identical and computes no gradients for them, and backward stops below the
        lowest layer that still trains (its input needs no gradient). Checkpoints keep the set.
        Each layer must have weights (conv, local, fc)."""
        index = self._weight_layer_index("Net.freeze", layers)
        for core in self._cores:
            for i in index:
                core.set_frozen(i, frozen)

    def weight_gradient_passes(self, layer: str) -> int:
        """How many backward passes computed the layer's weight gradients."""
        return self._core.param_gradient_passes(self._weight_layer_index("Net", [layer])[0])

    def backward_passes(self, layer: str) -> int:
        """How many backward passes ran the layer's backward at all (0 before the first)."""
        if layer not in self._spec_index:
            raise KeyError(f"no layer {layer!r}")
        return self._core.backward_passes(self._spec_index[layer])

    def _weight_layer_index(self, what: str, layers: Sequence[str]) -> List[int]:
        if isinstance(layers, str):
            layers = [layers]
        weighted = [s.name for s in self.specs if s.type in WEIGHT_TYPES]
        out = []
        for name in layers:
            if name not in self._spec_index:
                raise KeyError(f"{what}: no layer {name!r}; layers with weights: "
                               f"{', '.join(weighted)}")
            if name not in weighted:
                spec = self.specs[self._spec_index[name]]
                raise ValueError(f"{what}: layer {name!r} ({spec.type}) has no weights; layers "
                                 f"with weights: {', '.join(weighted)}")
            out.append(self._spec_index[name])
        return out

    # ---- set-up ------------------------------------------------------------------------------

    def _initialise(self):
        """Weights ~ N(0, initW^2) per input, biases = initB, from a counter-based generator keyed
        by (seed, layer index): the same seed gives the same net."""
        for i, s in enumerate(self.specs):
            if s.type not in WEIGHT_TYPES:
                continue
            rng = np.random.Generator(np.random.Philox(key=np.array([self.seed, i], np.uint64)))
            count = self._core.param_count(i)
            for j in range(count - 1):
                shape = tuple(self._core.param_shape(i, j))
                self._set(i, j, 0, rng.standard_normal(shape) * s["initW"][j], s.name)
            self._set(i, count - 1, 0, s.get("initB", 0.0), s.name)

    def set_progress(self, progress: float) -> None:
        """Sets every learning rate from its schedule at training progress in [0, 1], times
        lr_scale."""
        self._progress = progress
        for i, s in enumerate(self.specs):
            if s.type not in WEIGHT_TYPES or not s.params:
                continue
            count = self._core.param_count(i)
            for core in self._cores:
                for j in range(count - 1):
                    core.set_hyper(i, j, self.lr_scale * s["epsW"][j].value(progress),
                                   s["momW"][j], s["wc"][j])
                core.set_hyper(i, count - 1, self.lr_scale * s["epsB"].value(progress),
                               s["momB"], 0.0)

    # ---- running -----------------------------------------------------------------------------

    def _batch(self, x, labels=None) -> list:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        batch = []
        for i in self._core.data_layers:
            s = self.specs[i]
            if s["dataIdx"] == 0:
                batch.append(x)
            else:
                if labels is None:
                    batch.append(np.zeros((x.shape[0], 1), self.dtype))
                else:
                    lab = np.ascontiguousarray(np.asarray(labels).reshape(-1, 1), self.dtype)
                    if lab.shape[0] != x.shape[0]:
                        raise ValueError(f"labels: {lab.shape[0]} labels for {x.shape[0]} images")
                    batch.append(lab)
        return batch

    def _cost_layers(self):
        return [i for i, s in enumerate(self.specs) if s.type.startswith("cost.")]

    def _require_cost(self, what: str) -> None:
        if not self._cost_layers():
            raise ValueError(f"Net.{what}: the net has no cost layer (e.g. a cost.logreg on the "
                             "labels and a softmax), so there is nothing to train or score; "
                             "predict() and features() work without one")

    def metric_names(self) -> List[Tuple[str, str]]:
        """(cost layer, metric) for every metric train_step and evaluate report, in their
        order."""
        out = []
        for i in self._cost_layers():
            s = self.specs[i]
            out.append((s.name, "loss"))
            if s.type == "cost.logreg":
                out += [(s.name, "top1_error"), (s.name, f"top{s['topk']}_error")]
        return list(dict.fromkeys(out))   # topk=1 names top1_error once

    def _metrics(self, n, cores=None) -> dict:
        """The cost layers' figures of the last forward pass, summed over `cores` (the replica
        graphs that ran, whose parts make the batch; default: the first graph alone)."""
        out = {}
        for i in self._cost_layers():
            loss, top1, topk, samples = (float(v) for v in np.sum(
                [core.cost_report(i) for core in cores or self._cores[:1]], axis=0))
            s = self.specs[i]
            out[s.name] = {"loss": loss / max(samples, 1)}
            if s.type == "cost.logreg":
                out[s.name]["top1_error"] = top1 / max(samples, 1)
                out[s.name][f"top{s['topk']}_error"] = topk / max(samples, 1)
        return out

    def forward(self, x, *, train: bool = False) -> np.ndarray:
        """The output of the last layer before the costs, for images x (N, C, H, W)."""
        self._core.forward(self._batch(x), train, self.seed, self.step, False)
        last = max(i for i, s in enumerate(self.specs) if not s.type.startswith("cost."))
        return self._core.output(last)

    def features(self, x, layer: str, *, batch_size: int = FEATURES_BATCH) -> np.ndarray:
        """The output of the named layer for images x (test mode). More than batch_size images
        go through the net batch_size at a time (a whole dataset at once would need its
        activations at every layer in memory); the result is the same either way."""
        index = {s.name: i for i, s in enumerate(self.specs)}
        if layer not in index:
            raise KeyError(f"no layer {layer!r}")
        batch_size = operator.index(batch_size)
        if batch_size < 1:
            raise ValueError(f"Net.features: batch_size must be >= 1, got {batch_size}")
        x = np.asarray(x)
        out = None
        for start in range(0, max(len(x), 1), batch_size):
            self._core.forward(self._batch(x[start:start + batch_size]), False, self.seed,
                               self.step, False)
            part = self._core.output(index[layer])
            if len(x) <= batch_size:
                return part
            if out is None:
                out = np.empty((len(x),) + part.shape[1:], part.dtype)
            out[start:start + len(part)] = part
        return out

    def remember_data(self, provider, options: Optional[dict] = None) -> None:
        """Keeps what predicting on image files (and resuming on the same data) needs from the
        training data: its provider, image size, class names and mean image, and the options the
        data was opened with; checkpoints store them."""
        self.data_info = {"provider": provider.name,
                          "image_shape": list(provider.image_shape),
                          "label_names": list(provider.label_names)}
        if options is not None:
            self.data_info["options"] = dict(options)
        self.data_mean = np.asarray(provider.mean, np.float32)

    def images_from_files(self, paths) -> np.ndarray:
        """Image files as this net's input: RGB, shorter side scaled to the training images' size
        (256 when unknown, as in the paper), the centre crop of the data layer's size, and the
        training mean image (when the net knows it) subtracted. One channel: the luma."""
        # Imported here, not at the top: convnet.data (every provider) adds a quarter to the time
        # of `import convnet`, and only predicting on image files needs it. No cycle: the data
        # package imports nothing of the net (tests/test_import_cycles.py).
        from .data.folder import load_image
        image_layer = next(s for s in self.specs if s.type == "data" and s["dataIdx"] == 0)
        c, h, w = self.output_shape(image_layer.name)
        info = self.data_info or {}
        size = int(info.get("image_shape", (3, max(256, h, w)))[1])
        if size < max(h, w):
            size = max(h, w)
        out = np.empty((len(paths), c, h, w), np.float32)
        top, left = (size - h) // 2, (size - w) // 2
        mean = self.data_mean
        if mean is not None and mean.shape[1:] != (size, size):
            mean = None
        for k, path in enumerate(paths):
            image = load_image(path, size).astype(np.float32)
            if c == 1:
                image = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
            elif c != 3:
                raise ValueError(f"image files give 1 or 3 channels; the net wants {c}")
            if mean is not None:
                image = image - mean
            out[k] = image[:, top:top + h, left:left + w]
        return out

    def predict(self, x) -> np.ndarray:
        """Class probabilities: the softmax that feeds the first logreg cost (test mode). x is
        a batch of images, or a list of image file paths (see images_from_files)."""
        if isinstance(x, (str, os.PathLike)):
            x = [x]
        if isinstance(x, (list, tuple)) and x and isinstance(x[0], (str, os.PathLike)):
            x = self.images_from_files(x)
        for i in self._cost_layers():
            s = self.specs[i]
            if s.type == "cost.logreg":
                return self.features(x, s.inputs[1])
        return self.forward(x)

    def train_step(self, x, labels, *,
                   combine_gradients: Optional[Callable[["Net"], None]] = None,
                   sample_offset: int = 0,
                   params_ready: Optional[Callable[[int], None]] = None) -> dict:
        """One SGD step on a batch: forward, backward and update in C++. Returns each cost
        layer's mean loss (and error rates) on the batch, measured before the update.
        combine_gradients(net), when given, runs between backward and update and may replace
        the gradients (set_gradients): data parallelism sums them over processes there.
        sample_offset: where x's first image is in the global batch x is a shard of, so that
        dropout draws that part of the global batch's masks. params_ready(layer index): called
        during backward as soon as that layer's parameter gradients are final."""
        self._require_cost("train_step")
        ran = None   # the replica graphs whose costs count (default: the one graph)
        if self.replicas == 1 and combine_gradients is None and not sample_offset and \
                params_ready is None:
            self._core.train_step(self._batch(x, labels), self.seed, self.step)   # fused in C++
            self.step += 1
        else:
            if self.replicas > 1:   # the graphs' gradients summed first; no per-layer hook then
                ran = [self._cores[r] for r in
                       replicated_step(self, self._cores, x, labels, sample_offset)]
            else:
                self._core.forward(self._batch(x, labels), True, self.seed, self.step, True,
                                   sample_offset)
                self._core.backward(self.seed, self.step, sample_offset, params_ready)
            self._update(combine_gradients)
        return self._metrics(len(x), ran)

    def apply_gradients(self, gradients: Mapping[str, np.ndarray], *,
                        combine_gradients: Optional[Callable[["Net"], None]] = None) -> None:
        """One SGD update (momentum, weight decay, the current rates) with the given gradients
        of the parameters that train, without a forward or backward pass (combine_gradients as
        in train_step): a data-parallel rank whose shard of a small last batch is empty still
        takes the step the others take."""
        self.set_gradients(gradients)
        self._update(combine_gradients)

    def _update(self, combine_gradients) -> None:
        """The end of a step: the gradients combined (when asked), every graph updated."""
        if combine_gradients is not None:
            combine_gradients(self)
        for core in self._cores:
            core.update()
        self.step += 1

    def _trained_param_index(self) -> Dict[str, Tuple[int, int]]:
        """The (layer, parameter) indices of the parameters that train (not frozen), by name."""
        frozen = set(self.frozen)
        return {name: ij for name, ij in self._param_index.items()
                if name.partition(".")[0] not in frozen}

    def trained_gradients(self) -> Dict[str, np.ndarray]:
        """The last backward pass's gradients of the parameters that train (not frozen)."""
        return {name: self._core.param_get(i, j, 1)
                for name, (i, j) in self._trained_param_index().items()}

    def trained_parameters(self) -> List[Tuple[int, str, Tuple[int, ...]]]:
        """(layer index, name, shape) of every parameter that trains, in net order."""
        return [(i, name, tuple(self._core.param_shape(i, j)))
                for name, (i, j) in self._trained_param_index().items()]

    def read_gradient(self, name: str, out: np.ndarray, scale: float = 1.0) -> None:
        """out (flat, the parameter's size) = scale * the named parameter's gradient: straight
        from the live gradient on a CPU net, through a copy from the device otherwise."""
        i, j = self.params._locate(name)
        live = self._core.param_grad(i, j) if self._on_cpu() else self._core.param_get(i, j, 1)
        if scale != 1.0:
            np.multiply(live.reshape(-1), scale, out=out)
        else:
            np.copyto(out, live.reshape(-1))

    def gradient_tensor(self, name: str):
        """The named parameter's live gradient tensor (a convnet._core.Tensor on the net's
        device) of a net of one graph: NCCL sums it in place."""
        if self.replicas != 1:
            raise ValueError("gradient_tensor: a net of replicated layers has one per replica")
        i, j = self.params._locate(name)
        return self._core.param_tensor(i, j, 1)

    def write_gradient(self, name: str, value: np.ndarray) -> None:
        """The named parameter's gradient = value (flat or shaped), before update."""
        i, j = self.params._locate(name)
        if self._on_cpu():
            for core in self._cores:
                np.copyto(core.param_grad(i, j).reshape(-1), value.reshape(-1))
        else:
            self._set(i, j, 1, value.reshape(self._core.param_shape(i, j)), name)

    def set_gradients(self, gradients: Mapping[str, np.ndarray]) -> None:
        """Replaces the named parameters' gradients (before update)."""
        for name, value in gradients.items():
            i, j = self.params._locate(name)
            self._set(i, j, 1, value, name)

    def evaluate(self, x, labels) -> dict:
        """Each cost layer's mean loss and error rates on a batch, in test mode."""
        self._require_cost("evaluate")
        self._core.forward(self._batch(x, labels), False, self.seed, self.step, True)
        return self._metrics(len(x))

    def gradients(self, x, labels, *, train: bool = True) -> Dict[str, np.ndarray]:
        """The gradient of the objective for every parameter (no update)."""
        self._require_cost("gradients")
        self._core.forward(self._batch(x, labels), train, self.seed, self.step, True)
        self._core.backward(self.seed, self.step)
        return {k: self._core.param_get(i, j, 1) for k, (i, j) in self._param_index.items()}

    def objective(self, x, labels, *, train: bool = True) -> float:
        """sum over cost layers of coeff * mean cost, the quantity gradients() differentiates."""
        self._require_cost("objective")
        self._core.forward(self._batch(x, labels), train, self.seed, self.step, True)
        total = 0.0
        for i in self._cost_layers():
            loss, _, _, samples = self._core.cost_report(i)
            total += self.specs[i]["coeff"] * loss / samples
        return total

    def profile(self, on: bool = True) -> None:
        """Starts (or, with on=False, stops) timing every layer's forward, backward and update;
        starting resets the sums. On a GPU each layer is then followed by a synchronisation, so
        the step runs slower while profiled. Read the sums with layer_times()."""
        self._core.set_profiling(on)

    def layer_times(self) -> Dict[str, Tuple[float, float, float]]:
        """Seconds spent in each layer's (forward, backward, update) since profile() started,
        summed over the passes run; empty when not profiling."""
        return {s.name: t for s, t in zip(self.specs, self._core.layer_times())}

    # ---- description -------------------------------------------------------------------------

    def output_shape(self, layer: str):
        index = {s.name: i for i, s in enumerate(self.specs)}
        return tuple(self._core.output_shape(index[layer]))

    @property
    def placement(self) -> Dict[str, Tuple[int, ...]]:
        """The logical device(s) of every layer, from the configs' gpu= keys as cuda-convnet
        places them: a layer without gpu= runs where its first input runs; data layers feed
        every device. On a machine without GPUs every logical device is the CPU."""
        where: Dict[str, Tuple[int, ...]] = {}
        for s in self.specs:
            if s.gpu is not None:
                where[s.name] = tuple(s.gpu)
            elif s.type == "data" or not s.inputs:
                where[s.name] = (0,)
            else:
                first = s.inputs[0]
                if self.specs[self._spec_index[first]].type == "data" and len(s.inputs) > 1:
                    first = s.inputs[1]   # a cost's label input says nothing about placement
                where[s.name] = where[first]
        return where

    def cross_device_edges(self) -> List[Tuple[str, str]]:
        """(producer, consumer) pairs whose activations move between logical devices (the paper's
        peer-to-peer copies between the two GPUs' columns); data layers are not counted."""
        where, edges = self.placement, []
        for s in self.specs:
            for name in s.inputs:
                if (self.specs[self._spec_index[name]].type != "data" and
                        where[name] != where[s.name]):
                    edges.append((name, s.name))
        return edges

    def copy_paths(self) -> Dict[Tuple[str, str], str]:
        """{(producer, consumer): path} for every copy edge, data layers' included: how the last
        copy went (before the first step, how it will go). "peer": GPU to GPU directly (the devices
        can access each other's memory, see convnet.can_access_peer); "host": through host
        memory; "device": both logical devices on one GPU; "cpu": both on the CPU."""
        names = [s.name for s in self.specs]
        return {(names[p], names[c]): path for p, c, path in self._core.copy_edges()}

    def summary(self) -> str:
        """Per layer: type, output shape, parameters, neurons, forward multiply-adds per sample;
        with gpu= in the config, also each layer's logical device."""
        placed = any(s.gpu is not None for s in self.specs)
        where = self.placement
        rows = [("layer", "type", "output", "params", "neurons", "MFLOPs") +
                (("device",) if placed else ())]
        total_params = total_neurons = total_flops = 0
        for i, s in enumerate(self.specs):
            shape = tuple(self._core.output_shape(i))
            params = sum(int(np.prod(self._core.param_shape(i, j)))
                         for j in range(self._core.param_count(i)))
            neurons = int(np.prod(shape)) if s.type in WEIGHT_TYPES else 0
            flops = 2 * self._core.flops_per_sample(i)
            total_params += params
            total_neurons += neurons
            total_flops += flops
            rows.append((s.name, s.type, "x".join(map(str, shape)), f"{params:,}",
                         f"{neurons:,}" if neurons else "", f"{flops / 1e6:.1f}" if flops else "")
                        + ((",".join(f"gpu{g}" for g in where[s.name]),) if placed else ()))
        rows.append(("total", "", "", f"{total_params:,}", f"{total_neurons:,}",
                     f"{total_flops / 1e6:.1f}") + (("",) if placed else ()))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)

    def param_shapes(self) -> Dict[str, Tuple[int, ...]]:
        """The shape of every parameter, by name (as in params), without copying them."""
        return {name: tuple(self._core.param_shape(i, j))
                for name, (i, j) in self._param_index.items()}

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.param_shapes().values())

    @property
    def trained_parameter_count(self) -> int:
        """The parameters training changes: those of the layers not frozen."""
        return sum(int(np.prod(self._core.param_shape(i, j)))
                   for i, j in self._trained_param_index().values())
