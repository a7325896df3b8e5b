"""The registry of layer types, keyed by the `type=` string (an explicit table, no discovery by
import side effects): every type cuda-convnet v1 and v2 know, with the keys of their definition
and parameter sections (docs/cuda-convnet-format.md, sections 1-2; docs/layers.md is generated
from this registry). Types not implemented yet are registered with
supported=False, so that they parse and are refused with a clear message. Upstream's divisibility
limits (channels a multiple of 4 or 16, filters of 16) are gone."""

from typing import Dict

from . import values as v
from .schema import (Key, LayerType, bool_key, choice_key, float_key, int_key, schedule_key)

REGISTRY: Dict[str, LayerType] = {}


def register(t: LayerType) -> LayerType:
    if t.name in REGISTRY:
        raise ValueError(f"layer type {t.name!r} registered twice")
    REGISTRY[t.name] = t
    return t


def _weight_params():
    return (
        schedule_key("epsW", per_input=True, doc="weight learning rate per input: a number or a "
                     "schedule (const, linear, exp, dexp)"),
        schedule_key("epsB", doc="bias learning rate: a number or a schedule"),
        float_key("momW", per_input=True, doc="weight momentum per input"),
        float_key("momB", doc="bias momentum"),
        float_key("wc", 0.0, minimum=0.0, per_input=True,
                  doc="L2 weight decay per input (weights only)"),
        float_key("wball", 0.0, minimum=0.0, per_input=True,
                  doc="max-norm of each filter (0: none); parsed, not applied yet"),
        int_key("updatePeriod", 0, minimum=0, doc="v2: update every N backward passes of "
                "replicated layers; parsed, not applied: convnet updates once per batch, summing "
                "every pass (docs/distributed.md)"),
        float_key("superEps", 0.0, doc="parsed for compatibility; unused upstream too"),
        float_key("superMom", 0.0, doc="parsed for compatibility; unused upstream too"),
    )


def _init_keys():
    return (
        float_key("initW", per_input=True, minimum=0.0,
                  doc="standard deviation of the N(0, initW^2) weight initialisation, per input"),
        float_key("initB", 0.0, doc="constant bias initialisation"),
        Key("initWFunc", "string", v.parse_str, None, doc="module.func(args) returning initial "
            "weights; not supported yet (refused when given)"),
        Key("initBFunc", "string", v.parse_str, None, doc="module.func(args) returning initial "
            "biases; not supported yet (refused when given)"),
        Key("weightSource", "string", v.parse_str, None, doc="share another layer's weights; not "
            "supported yet (refused when given)"),
    )


def _conv_keys(conv: bool):
    keys = (
        int_key("channels", minimum=1, per_input=True, doc="input channels of each input"),
        int_key("filters", minimum=1, doc="filters per group (total output channels: "
                "filters * groups)"),
        int_key("filterSize", minimum=1, per_input=True, doc="square filter size per input"),
        int_key("padding", 0, minimum=0, per_input=True, doc="implicit zero border per input"),
        int_key("stride", 1, minimum=1, per_input=True, doc="filter stride per input"),
        int_key("groups", 1, minimum=1, per_input=True,
                doc="filter groups per input; group g sees channels [g*C/G, (g+1)*C/G)"),
        int_key("modulesX", 0, minimum=0, doc="v2: output width override (0: computed by "
                "cuda-convnet's rule, 1 + ceil((2*padding + imgSize - filterSize) / stride))"),
        bool_key("randSparse", False, doc="v1 random sparse connectivity; not supported (refused "
                 "when true)"),
        int_key("filterChannels", 0, minimum=0, per_input=True,
                doc="v1 randSparse only; ignored otherwise"),
    ) + _init_keys()
    if conv:
        keys += (
            int_key("partialSum", 0, minimum=0, doc="v1 weight-gradient chunking; accepted and "
                    "ignored (no effect on results)"),
            int_key("sumWidth", 0, minimum=0, doc="v2 weight-gradient chunking; accepted and "
                    "ignored (no effect on results)"),
            bool_key("sharedBiases", True, doc="one bias per filter (false: one per filter and "
                     "output position)"),
        )
    return keys


def _norm_params(min_div_doc):
    return (float_key("scale", minimum=0.0, doc="alpha before division by the window size"),
            float_key("pow", doc="the exponent beta"),
            float_key("minDiv", 1.0, doc=min_div_doc))


COEFF = float_key("coeff", doc="scales this cost in the objective")
ANY = None

register(LayerType(
    "data", "Feeds one matrix of the data provider (images, labels).",
    keys=(int_key("dataIdx", minimum=0, doc="index of the data provider's matrix (0: images, "
                  "1: labels)"),
          int_key("start", 0, minimum=0, doc="v2: first row used"),
          int_key("end", 0, minimum=0, doc="v2: one past the last row used (0: all)"),
          Key("shape", "ints", lambda t: tuple(v.parse_int(x) for x in v.split_list(t)), None,
              check=lambda s: len(s) in (1, 3) and all(d >= 1 for d in s),
              expected="C,H,W for images or N for a vector",
              doc="convnet addition: the shape of one sample, C,H,W for images (e.g. "
                  "3,224,224) or N; optional: without it convnet-train takes it from the data, "
                  "as upstream did, and checks it against the data when given")),
    min_inputs=0, max_inputs=0, takes_neuron=False))

register(LayerType("conv", "Convolution with shared weights; several inputs are summed, each "
                   "with its own filters.", keys=_conv_keys(True), params=_weight_params(),
                   max_inputs=ANY, weights=True))
register(LayerType("local", "Locally connected (unshared) convolution.", keys=_conv_keys(False),
                   params=_weight_params(), max_inputs=ANY, weights=True))
register(LayerType("fc", "Fully connected; several inputs are summed, each with its own "
                   "weights.", keys=(int_key("outputs", minimum=1, doc="output neurons"),)
                   + _init_keys(), params=_weight_params(), max_inputs=ANY, weights=True))
register(LayerType(
    "pool", "Max or average pooling over square windows (overlapping when stride < sizeX).",
    keys=(choice_key("pool", ("max", "avg", "maxabs"), doc="max, avg (maxabs: v2, not "
                     "supported yet)"),
          int_key("channels", minimum=1, doc="input channels"),
          int_key("sizeX", minimum=1, doc="window size"),
          int_key("stride", minimum=1, doc="window stride"),
          int_key("start", 0, doc="position of the first window (may be negative)"),
          int_key("outputsX", 0, minimum=0, doc="outputs per axis (0: ceil((imgSize - start - "
                  "sizeX) / stride) + 1)"),
          bool_key("sum", False, doc="v2, avg only: sum instead of mean; not supported yet "
                   "(refused when true)"))))
register(LayerType("cmrnorm", "Response normalisation across maps (the paper's LRN).",
                   keys=(int_key("channels", minimum=1, doc="input channels"),
                         int_key("size", minimum=1, doc="maps in each window"),
                         bool_key("blocked", False, doc="fixed blocks of `size` maps instead "
                                  "of a sliding window")),
                   params=_norm_params("k, the additive constant (v1: always 1)")))
register(LayerType("rnorm", "Response normalisation within each map over size x size "
                   "windows.", keys=(int_key("channels", minimum=1, doc="input channels"),
                                     int_key("size", minimum=1, doc="window size")),
                   params=_norm_params("k, the additive constant (v1: always 1)")))
register(LayerType("cnorm", "Contrast normalisation within each map: like rnorm on deviations "
                   "from the local mean.", keys=(int_key("channels", minimum=1, doc="input "
                                                         "channels"),
                                                 int_key("size", minimum=1, doc="window size")),
                   params=_norm_params("k, the additive constant (v1: always 1)")))
register(LayerType("neuron", "An element-wise activation.",
                   keys=(Key("neuron", "neuron", v.parse_str, doc="the activation, e.g. relu, "
                             "tanh[a,b]"),), takes_neuron=False))
register(LayerType("softmax", "Softmax over each sample's outputs.", takes_neuron=False))
register(LayerType("eltsum", "Weighted element-wise sum of equally sized inputs.",
                   keys=(float_key("coeffs", 1.0, per_input=True, doc="weight of each input "
                                   "(v1 reads it here, v2 from the parameter file)"),),
                   max_inputs=ANY))
register(LayerType("eltmax", "Element-wise maximum of equally sized inputs.", min_inputs=2,
                   max_inputs=ANY))
register(LayerType("concat", "Concatenation of the inputs' outputs (v2).", max_inputs=ANY))
_DROPOUT_PARAMS = (bool_key("enable", True, doc="false turns the layer into the identity"),
                   float_key("keep", 0.5, doc="probability of keeping a unit"))
register(LayerType("dropout", "Inverted dropout (v2): kept units scaled by 1/keep in "
                   "training, identity at test time.", params=_DROPOUT_PARAMS,
                   takes_neuron=False))
register(LayerType("dropout2", "Classic dropout, as in the paper: unscaled in training, "
                   "multiplied by keep at test time.", params=_DROPOUT_PARAMS,
                   takes_neuron=False))
register(LayerType("hs", "The 2012 code's dropout: classic dropout with keep in the "
                   "definition file.", keys=(float_key("keep", 0.5, doc="probability of "
                                                       "keeping a unit"),), takes_neuron=False))
register(LayerType("cost.logreg", "Multinomial logistic regression on (labels, softmax "
                   "probabilities); reports log-loss, top-1 and top-k error.",
                   keys=(Key("children", "string", v.parse_str, None, doc="v2 reporting "
                             "aggregation; accepted and ignored"),),
                   params=(COEFF, int_key("topk", 1, minimum=1, doc="k of the reported top-k "
                                          "error")),
                   min_inputs=2, max_inputs=2, takes_neuron=False, is_cost=True))
register(LayerType("cost.sum2", "Sum of squares of the input, times coeff.",
                   keys=(Key("children", "string", v.parse_str, None, doc="v2 reporting "
                             "aggregation; accepted and ignored"),),
                   params=(COEFF,), takes_neuron=False, is_cost=True))

# Upstream types that parse but are not implemented here yet.
for _name, _doc, _cost in [
        ("cmpool", "Cross-map pooling (v2).", False), ("sfc", "Split fully connected (v2).", False),
        ("blur", "Gaussian blur.", False), ("nailbed", "Bed-of-nails subsampling.", False),
        ("resize", "Bilinear resize.", False), ("rscale", "Random rescale.", False),
        ("crop", "Crop (v2).", False), ("href", "Horizontal reflection (v2).", False),
        ("rgb2yuv", "RGB to YUV.", False), ("rgb2lab", "RGB to L*a*b*.", False),
        ("pass", "Zero-copy concatenation (v2).", False), ("sum", "Strided sum (v2).", False),
        ("cost.crossent", "Cross-entropy on one-hot labels (v2).", True),
        ("cost.bce", "Binomial cross-entropy (v2).", True),
        ("cost.dce", "Detection cross-entropy (v2).", True)]:
    register(LayerType(_name, _doc, max_inputs=ANY, min_inputs=0, supported=False,
                       is_cost=_cost))
