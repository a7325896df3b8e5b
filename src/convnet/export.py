"""ONNX export: a net's test-time computation as an ONNX model (Net.to_onnx, convnet-export).

The model takes what Net.predict and Net.forward take, float32 (N, C, H, W) images as the data
layer gets them (the training set's mean image already subtracted), with N free, and gives the
net's prediction: the softmax feeding the first logistic-regression cost (else the last layer
before the costs). Cost layers and label inputs are left out; dropout is its test-time scale.

Each layer becomes standard ONNX operators (opset 17), exactly:
- conv: Conv, with the extra end padding that cuda-convnet's output-size rule implies (its last
  window may overhang the padded image; the overhang reads zeros either way), groups, several
  inputs summed, unshared biases added as a (F, OH, OW) tensor;
- pool: MaxPool or AveragePool (count_include_pad=0: the mean over the in-image pixels, as
  here), windows starting at `start`, overhanging windows by end padding;
- cmrnorm: LRN (odd sizes; ONNX's alpha is ours times size), or for even sizes the same sum
  over maps as a convolution with ones;
- rnorm, cnorm: the window sums as depthwise convolutions with ones over the squares (and, for
  cnorm, the local mean), then the power;
- fc: Flatten and Gemm; neurons, softmax, eltsum, eltmax, concat: their operators.
Layers ONNX cannot express (locally connected layers, blocked cmrnorm, neurons without an
operator) are refused, naming them."""

import os
from typing import Dict, List

import numpy as np

from .config.values import parse_neuron

OPSET = 17


class ExportError(ValueError):
    """A net that cannot be written as ONNX; the message names the layers and why."""


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ExportError('ONNX export needs the onnx package: pip install "convnet[onnx]" (or '
                          "pip install onnx)") from None
    return onnx, helper, numpy_helper


class _Graph:
    """Nodes and initializers under construction; names are unique per layer."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def const(self, name: str, value) -> str:
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: List[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=output, **attrs))
        return output


def _end_pad(size: int, window: int, stride: int, begin: int, outputs: int) -> int:
    """The end padding after which ONNX's floor rule gives `outputs` windows."""
    return max(0, (outputs - 1) * stride + window - (size + begin))


def _neuron(g: _Graph, name: str, x: str, spec: str) -> str:
    kind, a, b = parse_neuron(spec, f"layer '{name}'")
    f32 = np.float32
    if kind == "ident":
        return g.op("Identity", [x], name)
    if kind == "relu":
        return g.op("Relu", [x], name)
    if kind == "logistic":
        return g.op("Sigmoid", [x], name)
    if kind == "abs":
        return g.op("Abs", [x], name)
    if kind == "sqrt":
        return g.op("Sqrt", [x], name)
    if kind == "square":
        return g.op("Mul", [x, x], name)
    if kind == "softrelu":
        return g.op("Softplus", [x], name)
    if kind == "tanh":    # a tanh(b x)
        inner = g.op("Mul", [x, g.const(f"{name}/b", f32(b))], f"{name}/bx")
        return g.op("Mul", [g.op("Tanh", [inner], f"{name}/tanh"), g.const(f"{name}/a", f32(a))],
                    name)
    if kind == "linear":  # a x + b
        ax = g.op("Mul", [x, g.const(f"{name}/a", f32(a))], f"{name}/ax")
        return g.op("Add", [ax, g.const(f"{name}/b", f32(b))], name)
    if kind == "brelu":   # min(max(x, 0), a)
        return g.op("Clip", [x, g.const(f"{name}/lo", f32(0)), g.const(f"{name}/hi", f32(a))],
                    name)
    if kind == "log":     # log(a + x)
        return g.op("Log", [g.op("Add", [x, g.const(f"{name}/a", f32(a))], f"{name}/ax")], name)
    raise ExportError(f"layer '{name}': neuron {spec!r} has no ONNX operator here")


def _box_sum(g: _Graph, name: str, x: str, channels: int, size: int) -> str:
    """Each map's sum over size x size windows starting size//2 before the pixel, clipped to the
    map: a depthwise convolution with ones and zero padding."""
    pre = size // 2
    ones = g.const(f"{name}/ones", np.ones((channels, 1, size, size), np.float32))
    return g.op("Conv", [x, ones], f"{name}/sum", group=channels, kernel_shape=[size, size],
                pads=[pre, pre, size - 1 - pre, size - 1 - pre])


def _scaled_power(g: _Graph, name: str, x: str, sums: str, alpha: float, k: float,
                  power: float) -> str:
    """x * (k + alpha * sums)^-power."""
    d = g.op("Add", [g.op("Mul", [sums, g.const(f"{name}/alpha", np.float32(alpha))],
                          f"{name}/scaled"), g.const(f"{name}/k", np.float32(k))], f"{name}/d")
    return g.op("Div", [x, g.op("Pow", [d, g.const(f"{name}/pow", np.float32(power))],
                                f"{name}/dpow")], name)


def _layer(g: _Graph, net, spec, inputs: List[str]) -> str:
    name, kind = spec.name, spec.type
    x = inputs[0] if inputs else None
    in_shapes = [net.output_shape(i) for i in spec.inputs]
    out_shape = net.output_shape(name)
    if kind == "conv":
        # One input with a bias per filter is one Conv; otherwise each input's Conv without a
        # bias, their Sum, and the biases (per filter, or per filter and position) added.
        single = len(inputs) == 1 and spec["sharedBiases"]
        parts = []
        for k, (xi, shape) in enumerate(zip(inputs, in_shapes)):
            key = "weights" if k == 0 else f"weights.{k}"
            w = net.params[f"{name}.{key}"]
            size, stride, pad = w.shape[2], spec["stride"][k], spec["padding"][k]
            ends = [_end_pad(shape[1 + a], size, stride, pad, out_shape[1 + a]) for a in (0, 1)]
            conv_in = [xi, g.const(f"{name}/{key}", w)]
            if single:
                conv_in.append(g.const(f"{name}/biases", net.params[f"{name}.biases"]))
            parts.append(g.op("Conv", conv_in, name if single else f"{name}/conv{k}",
                              group=spec["groups"][k], strides=[stride, stride],
                              kernel_shape=[size, size], pads=[pad, pad, ends[0], ends[1]]))
        if single:
            return parts[0]
        total = parts[0] if len(parts) == 1 else g.op("Sum", parts, f"{name}/sum")
        bias = net.params[f"{name}.biases"]
        bias = bias.reshape(-1, 1, 1) if spec["sharedBiases"] else bias
        return g.op("Add", [total, g.const(f"{name}/biases", bias)], name)
    if kind == "fc":
        parts = []
        for k, xi in enumerate(inputs):
            key = "weights" if k == 0 else f"weights.{k}"
            flat = g.op("Flatten", [xi], f"{name}/flat{k}", axis=1)
            gemm_in = [flat, g.const(f"{name}/{key}", net.params[f"{name}.{key}"])]
            if k == 0:
                gemm_in.append(g.const(f"{name}/biases", net.params[f"{name}.biases"]))
            parts.append(g.op("Gemm", gemm_in, name if len(inputs) == 1 else f"{name}/gemm{k}",
                              transB=1))
        return parts[0] if len(parts) == 1 else g.op("Sum", parts, name)
    if kind == "neuron":
        return _neuron(g, name, x, spec["neuron"])
    if kind == "pool":
        size, stride, start = spec["sizeX"], spec["stride"], spec["start"]
        h, w = in_shapes[0][1:]
        if start > 0:   # windows from pixel `start` on: the pixels before it are never read
            x = g.op("Slice", [x, g.const(f"{name}/from", np.array([start, start], np.int64)),
                               g.const(f"{name}/to", np.array([h, w], np.int64)),
                               g.const(f"{name}/axes", np.array([2, 3], np.int64))],
                     f"{name}/slice")
            h, w = h - start, w - start
        begin = max(0, -start)
        ends = [_end_pad(n, size, stride, begin, o) for n, o in zip((h, w), out_shape[1:])]
        attrs = dict(kernel_shape=[size, size], strides=[stride, stride],
                     pads=[begin, begin, ends[0], ends[1]])
        if spec["pool"] == "max":
            return g.op("MaxPool", [x], name, **attrs)
        return g.op("AveragePool", [x], name, count_include_pad=0, **attrs)
    if kind == "cmrnorm":
        if spec["blocked"]:
            raise ExportError(f"layer '{name}': blocked cmrnorm has no ONNX operator")
        size, channels = spec["size"], in_shapes[0][0]
        alpha, k, power = spec.params["alpha"], spec.params["k"], spec.params["pow"]
        if size % 2 == 1:
            return g.op("LRN", [x], name, size=size, alpha=float(alpha * size),
                        beta=float(power), bias=float(k))
        # An even window [f - size/2, f + size/2 - 1] is not ONNX LRN's: sum the squares over
        # maps with a convolution of ones along the map axis instead.
        sq = g.op("Mul", [x, x], f"{name}/sq")
        shape4 = g.const(f"{name}/as4d", np.array([0, 1, channels, -1], np.int64))
        stacked = g.op("Reshape", [sq, shape4], f"{name}/maps")
        ones = g.const(f"{name}/ones", np.ones((1, 1, size, 1), np.float32))
        pre = size // 2
        sums = g.op("Conv", [stacked, ones], f"{name}/summed", kernel_shape=[size, 1],
                    pads=[pre, 0, size - 1 - pre, 0])
        back = g.op("Reshape", [sums, g.op("Shape", [x], f"{name}/shape")], f"{name}/sum")
        return _scaled_power(g, name, x, back, alpha, k, power)
    if kind in ("rnorm", "cnorm"):
        size, channels = spec["size"], in_shapes[0][0]
        alpha, k, power = spec.params["alpha"], spec.params["k"], spec.params["pow"]
        source = x
        if kind == "cnorm":   # deviations from the local mean (over the in-image pixels)
            h, w = in_shapes[0][1:]
            pre = size // 2
            inside = np.pad(np.ones((h, w)), ((pre, size - 1 - pre), (pre, size - 1 - pre)))
            count = np.array([[inside[i:i + size, j:j + size].sum() for j in range(w)]
                              for i in range(h)], np.float32)
            mean = g.op("Div", [_box_sum(g, f"{name}/m", x, channels, size),
                                g.const(f"{name}/count", count)], f"{name}/mean")
            source = g.op("Sub", [x, mean], f"{name}/dev")
        sq = g.op("Mul", [source, source], f"{name}/sq")
        return _scaled_power(g, name, x, _box_sum(g, name, sq, channels, size), alpha, k, power)
    if kind == "softmax":
        return g.op("Softmax", [x], name, axis=1)
    if kind in ("dropout", "dropout2", "hs"):
        # At test time inverted dropout (dropout) is the identity; the classic kinds scale by
        # keep (dropout2's in the parameter file, hs's in the definition), unless disabled.
        scale = 1.0
        if kind == "dropout2" and spec.params["enable"]:
            scale = spec.params["keep"]
        elif kind == "hs":
            scale = spec["keep"]
        if scale == 1.0:
            return g.op("Identity", [x], name)
        return g.op("Mul", [x, g.const(f"{name}/keep", np.float32(scale))], name)
    if kind == "eltsum":
        coeffs = spec["coeffs"]
        scaled = [xi if c == 1 else g.op("Mul", [xi, g.const(f"{name}/c{k}", np.float32(c))],
                                         f"{name}/scaled{k}")
                  for k, (xi, c) in enumerate(zip(inputs, coeffs))]
        return g.op("Sum", scaled, name)
    if kind == "eltmax":
        return g.op("Max", inputs, name)
    if kind == "concat":
        flat = [xi if len(s) == 1 else g.op("Flatten", [xi], f"{name}/flat{k}", axis=1)
                for k, (xi, s) in enumerate(zip(inputs, in_shapes))]
        return g.op("Concat", flat, name, axis=1)
    raise ExportError(f"layer '{name}' ({kind}) has no ONNX form here")


def output_layer(net) -> str:
    """The layer whose output the model gives: Net.predict's."""
    for s in net.specs:
        if s.type == "cost.logreg":
            return s.inputs[1]
    return [s.name for s in net.specs if not s.type.startswith("cost.")][-1]


def image_layer(net):
    """The data layer of the images (dataIdx=0): the model's input."""
    layers = [s for s in net.specs if s.type == "data" and s["dataIdx"] == 0]
    if len(layers) != 1:
        raise ExportError("ONNX export takes nets with one image input (data layer with "
                          f"dataIdx=0); this one has {len(layers)}")
    return layers[0]


def to_onnx(net, path) -> str:
    """Writes the net's test-time computation to `path` as an ONNX model (see the module
    docstring), checked by onnx.checker; returns the path. ExportError names the layers ONNX
    cannot express, or the missing onnx package."""
    onnx, helper, numpy_helper = _onnx()
    image = image_layer(net)
    target = output_layer(net)
    needed, stack = set(), [target]
    by_name = {s.name: s for s in net.specs}
    while stack:   # the layers the prediction depends on
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(by_name[name].inputs)
    other_data = [n for n in needed if by_name[n].type == "data" and n != image.name]
    if other_data:
        raise ExportError(f"the prediction reads data layers besides the images: "
                          f"{', '.join(other_data)}")
    refused = [f"{s.name} ({s.type})" for s in net.specs if s.name in needed
               and (s.type == "local" or (s.type == "cmrnorm" and s["blocked"]))]
    if refused:
        raise ExportError(f"ONNX has no operator for: {', '.join(refused)}; the model was not "
                          "written")
    g = _Graph(helper, numpy_helper)
    tensors: Dict[str, str] = {image.name: image.name}
    for s in net.specs:
        if s.name in needed and s.type != "data":
            tensors[s.name] = _layer(g, net, s, [tensors[i] for i in s.inputs])
    shape = net.output_shape(image.name)
    graph = helper.make_graph(
        g.nodes, f"convnet:{os.path.basename(str((net.source or {}).get('layers_path') or 'net'))}",
        [helper.make_tensor_value_info(image.name, onnx.TensorProto.FLOAT,
                                       ["N"] + list(shape))],
        [helper.make_tensor_value_info(tensors[target], onnx.TensorProto.FLOAT,
                                       ["N"] + list(net.output_shape(target)))],
        initializer=g.initializers)
    model = helper.make_model(graph, producer_name="convnet",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 9)   # readable by older onnxruntime releases too
    onnx.checker.check_model(model, full_check=True)
    from .files import atomic_write
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
    return os.fspath(path)
