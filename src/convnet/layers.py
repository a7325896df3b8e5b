"""Builders for custom layer stacks in Python, the same layers a config file defines:

    from convnet import Net, layers as L
    net = Net(layers=[
        L.Data("data", shape=(3, 32, 32)), L.Data("labels", data_idx=1),
        L.Conv("conv1", "data", filters=32, size=5, padding=2, init_w=1e-4, neuron="relu"),
        L.Pool("pool1", "conv1", size=3, stride=2),
        L.FC("fc10", "pool1", outputs=10, init_w=0.01),
        L.Softmax("probs", "fc10"), L.LogRegCost("cost", ["labels", "probs"]),
    ])

Each builder writes the sections a cuda-convnet config would hold, and the net is parsed from that
text: the checks and error messages are the config reader's, and Net.save keeps the text so the
net can be reloaded. `channels=` is filled in from the input layer where upstream needs it.
"""

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

Inputs = Union[str, Sequence[str]]
_UNKNOWN = object()  # the channels of a layer downstream of an undefined input


@dataclass
class Builder:
    name: str
    type: str
    inputs: Tuple[str, ...] = ()
    keys: Dict[str, object] = field(default_factory=dict)     # definition file
    params: Dict[str, object] = field(default_factory=dict)   # parameter file
    needs_channels: bool = False
    # How the output's channel count follows: "same" as the first input, "filters" (conv),
    # "shape" (data), or "none" (a vector: fc, softmax, concat).
    channels_out: str = "same"

    def out_channels(self, in_channels: List[Optional[int]]) -> Optional[int]:
        if self.channels_out == "filters":
            return self.keys["filters"] * self.keys.get("groups", 1)
        if self.channels_out == "shape":
            return self.keys["shape"][0] if "shape" in self.keys else None
        if self.channels_out == "none" or not in_channels:
            return None
        return in_channels[0]


def _inputs(inputs: Inputs) -> Tuple[str, ...]:
    return (inputs,) if isinstance(inputs, str) else tuple(inputs)


def _value(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (list, tuple)):
        return ",".join(_value(x) for x in v)
    return str(v)


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


def _weights(eps_w, eps_b, mom_w, mom_b, wc):
    return dict(epsW=eps_w, epsB=eps_b, momW=mom_w, momB=mom_b, wc=wc)


def Data(name: str, *, shape: Optional[Sequence[int]] = None, data_idx: int = 0) -> Builder:
    """A data layer: data_idx 0 is the images (shape (C, H, W)), 1 the labels."""
    return Builder(name, "data", keys=_drop_none({"dataIdx": data_idx, "shape": shape}),
                   channels_out="shape")


def Conv(name: str, inputs: Inputs, *, filters: int, size: int, stride: int = 1,
         padding: int = 0, groups: int = 1, init_w: float = 0.01, init_b: float = 0.0,
         neuron: Optional[str] = None, channels: Optional[int] = None, eps_w: float = 0.01,
         eps_b: float = 0.02, mom_w: float = 0.9, mom_b: float = 0.9, wc: float = 0.0,
         local: bool = False) -> Builder:
    """Convolution (local=True: locally connected). filters is the total number of output maps,
    split over `groups` (cuda-convnet's filters= is per group: this builder divides)."""
    if filters % groups:
        raise ValueError(f"{name}: filters={filters} is not divisible by groups={groups}")
    keys = _drop_none(dict(channels=channels, filters=filters // groups, filterSize=size,
                           stride=stride, padding=padding, groups=groups, initW=init_w,
                           initB=init_b, neuron=neuron))
    return Builder(name, "local" if local else "conv", _inputs(inputs), keys,
                   _weights(eps_w, eps_b, mom_w, mom_b, wc), needs_channels=True,
                   channels_out="filters")


def FC(name: str, inputs: Inputs, *, outputs: int, init_w: float = 0.01, init_b: float = 0.0,
       neuron: Optional[str] = None, eps_w: float = 0.01, eps_b: float = 0.02,
       mom_w: float = 0.9, mom_b: float = 0.9, wc: float = 0.0) -> Builder:
    """Fully connected; several inputs are summed, each with its own weights."""
    return Builder(name, "fc", _inputs(inputs),
                   _drop_none(dict(outputs=outputs, initW=init_w, initB=init_b, neuron=neuron)),
                   _weights(eps_w, eps_b, mom_w, mom_b, wc), channels_out="none")


def Pool(name: str, inputs: Inputs, *, size: int = 3, stride: int = 2, mode: str = "max",
         start: int = 0, outputs: int = 0, neuron: Optional[str] = None,
         channels: Optional[int] = None) -> Builder:
    """Max or average pooling (overlapping when stride < size), cuda-convnet's geometry."""
    return Builder(name, "pool", _inputs(inputs),
                   _drop_none(dict(pool=mode, channels=channels, sizeX=size, stride=stride,
                                   start=start, outputsX=outputs, neuron=neuron)),
                   needs_channels=True)


def LRN(name: str, inputs: Inputs, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
        k: float = 2.0, channels: Optional[int] = None) -> Builder:
    """The paper's local response normalisation (defaults: k=2, n=5, alpha=1e-4, beta=0.75), as a
    cmrnorm layer (scale = alpha * size). Odd sizes only: the paper's window is symmetric."""
    if size % 2 == 0:
        raise ValueError(f"{name}: the paper's LRN needs an odd size, got {size}")
    return Builder(name, "cmrnorm", _inputs(inputs), _drop_none(dict(channels=channels,
                                                                     size=size)),
                   dict(scale=alpha * size, pow=beta, minDiv=k), needs_channels=True)


def Neuron(name: str, inputs: Inputs, neuron: str) -> Builder:
    """An element-wise activation: relu, tanh[a,b], logistic, ..."""
    return Builder(name, "neuron", _inputs(inputs), dict(neuron=neuron))


def Dropout(name: str, inputs: Inputs, *, keep: float = 0.5, inverted: bool = False) -> Builder:
    """Dropout keeping `keep` of the units: classic (the paper's, scaled at test time) or
    inverted (scaled in training)."""
    return Builder(name, "dropout" if inverted else "dropout2", _inputs(inputs),
                   params=dict(keep=keep))


def Softmax(name: str, inputs: Inputs) -> Builder:
    return Builder(name, "softmax", _inputs(inputs), channels_out="none")


def LogRegCost(name: str, inputs: Inputs, *, coeff: float = 1.0, topk: int = 1) -> Builder:
    """Multinomial logistic regression on (labels, softmax probabilities)."""
    return Builder(name, "cost.logreg", _inputs(inputs), params=dict(coeff=coeff, topk=topk))


def Concat(name: str, inputs: Inputs) -> Builder:
    return Builder(name, "concat", _inputs(inputs), channels_out="none")


def EltSum(name: str, inputs: Inputs, *, coeffs: Optional[Sequence[float]] = None) -> Builder:
    return Builder(name, "eltsum", _inputs(inputs), _drop_none(dict(coeffs=coeffs)))


def EltMax(name: str, inputs: Inputs) -> Builder:
    return Builder(name, "eltmax", _inputs(inputs))


def render(builders: Sequence[Builder]) -> Tuple[str, str]:
    """The layer-definition and layer-parameter texts of a stack of builders."""
    channels: Dict[str, Optional[int]] = {}
    defs, params = [], []
    for b in builders:
        if not isinstance(b, Builder):
            raise TypeError(f"layers: expected builders from convnet.layers, got {b!r}")
        keys = dict(b.keys)
        ins = [channels.get(i, _UNKNOWN) for i in b.inputs]
        # An undefined input is the config reader's to report; nothing downstream is guessed.
        known = _UNKNOWN not in ins
        if b.needs_channels and "channels" not in keys and known:
            if any(c is None for c in ins):
                raise ValueError(f"{b.name}: cannot tell the input's channels; pass channels=")
            keys["channels"] = ins if len(ins) > 1 else ins[0]
        lines = [f"[{b.name}]", f"type={b.type}"]
        if b.inputs:
            lines.append("inputs=" + ",".join(b.inputs))
        lines += [f"{k}={_value(v)}" for k, v in keys.items()]
        defs.append("\n".join(lines))
        if b.params:
            params.append("\n".join([f"[{b.name}]"] +
                                    [f"{k}={_value(v)}" for k, v in b.params.items()]))
        channels[b.name] = b.out_channels(ins) if known else _UNKNOWN
        if keys.get("neuron") not in (None, "ident"):
            # The config reader adds the inline neuron as a layer "<name>_neuron", which later
            # layers may read by that name.
            channels[f"{b.name}_neuron"] = channels[b.name]
    return "\n\n".join(defs) + "\n", "\n\n".join(params) + "\n"
