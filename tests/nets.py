"""Config text for the small nets the tests build, and building a Net from such text.

The tests write their nets' sections one to a line, `[fc] type=fc inputs=data outputs=4`, and
cfg() expands them into the one-key-a-line files that convnet.config parses, so that each net
reads at a glance and the keys every classifier repeats (its data and labels layers, the softmax
and the logistic-regression cost) are written once, in classifier()."""

import convnet
from convnet.config import parse_text


def cfg(sections: str) -> str:
    """Config-file text from whitespace-separated `[section]` and `key=value` words, one a line.

    It starts with a newline, as a triple-quoted config text does, so a file's first section
    stands on line 2 (the line numbers that config errors report)."""
    return "\n" + "".join(f"{word}\n" for word in sections.split())


def classifier(shape: str, body: str, scores: str = "fc") -> str:
    """Layer text of a classifier: a data layer of images of `shape` ("C,H,W") and a labels
    layer, the `body` sections, then a softmax over layer `scores` and the cost.logreg on it."""
    return cfg(f"[data] type=data dataIdx=0 shape={shape} [labels] type=data dataIdx=1 {body} "
               f"[probs] type=softmax inputs={scores} "
               f"[logprob] type=cost.logreg inputs=labels,probs")


def build_net(layers: str, params: str, **options) -> convnet.Net:
    """convnet.Net(**options: dtype, seed, ...) from layer and parameter config text."""
    specs = convnet.config.parse(parse_text(layers, "layers.cfg"),
                                 parse_text(params, "params.cfg"))
    return convnet.Net(specs, **options)
