"""Transfer learning: a trained net's weights loaded by layer name into another net (a new head,
more or fewer layers), and the layers to freeze picked by name or range.

The three usual strategies are each one convnet-train command (README, "Transfer learning"):
feature extraction (--init-from RUN --freeze every layer but the new head), partial fine-tuning
(--freeze the first layers) and full fine-tuning (--init-from alone)."""

import os
from dataclasses import dataclass
from typing import List, Sequence

from . import checkpoint, runs
from .net import WEIGHT_TYPES

LOADED, REINITIALISED, NEW, UNUSED = "loaded", "re-initialised", "initialised", "skipped"


class TransferError(ValueError):
    """A source that cannot be loaded or a layer selection that names nothing; says which."""


@dataclass
class TransferRow:
    layer: str
    status: str      # LOADED, REINITIALISED, NEW (not in the source) or UNUSED (not in this net)
    why: str


def select_layers(net, text: str, what: str = "--freeze") -> List[str]:
    """The layers with weights that `text` names: comma-separated layer names and ranges A-B
    (A, B and every layer with weights between them in the net's order). A layer's own name is
    taken whole even where it holds a '-'."""
    names = [s.name for s in net.specs]
    weighted = [s.name for s in net.specs if s.type in WEIGHT_TYPES]
    chosen: List[str] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if token in names:
            first = last = token
        else:
            ends = [(token[:k], token[k + 1:]) for k, ch in enumerate(token)
                    if ch == "-" and token[:k] in names and token[k + 1:] in names]
            if not ends:
                raise TransferError(f"{what} {text}: {token!r} is neither a layer nor a range "
                                    f"A-B of layers; layers with weights: {', '.join(weighted)}")
            first, last = ends[0]
        lo, hi = names.index(first), names.index(last)
        if lo > hi:
            raise TransferError(f"{what} {text}: the range {token} runs backwards ({first} "
                                f"comes after {last} in the net)")
        picked = [n for n in names[lo:hi + 1] if n in weighted]
        if not picked:
            spec = net.specs[lo]
            raise TransferError(f"{what} {text}: {token!r} holds no layer with weights "
                                f"({first} is {spec.type}); layers with weights: "
                                f"{', '.join(weighted)}")
        chosen += [n for n in picked if n not in chosen]
    if not chosen:
        raise TransferError(f"{what}: no layers given")
    return chosen


def init_from(net, source, reinit: Sequence[str] = ()) -> List[TransferRow]:
    """Copies into `net` the weights and biases of every layer of the source (a run folder, a
    training checkpoint or a Net.save file) that has a layer of the same name and the same
    parameter shapes here, except the layers named in `reinit` (a new head of the same shape);
    other layers keep the initialisation they have (the config's). Momenta start at zero.
    Returns a row per layer of either net saying what happened and why."""
    path = runs.checkpoint_path(source) if os.path.isdir(os.fspath(source)) else os.fspath(source)
    try:
        meta, arrays = checkpoint.load(path)
    except checkpoint.CheckpointError as e:
        raise TransferError(f"--init-from: {e}") from None
    if "net" not in meta:
        raise TransferError(f"--init-from {path}: the file holds no net")
    source_params = {k[len("param/"):]: v for k, v in arrays.items() if k.startswith("param/")}
    by_layer = {}
    for name, value in source_params.items():
        layer, _, param = name.partition(".")
        by_layer.setdefault(layer, {})[param] = value
    shapes = net.param_shapes()   # not net.params[...].shape: that copies each parameter
    ours = {}
    for name in shapes:
        layer, _, param = name.partition(".")
        ours.setdefault(layer, {})[param] = name
    rows = []
    for layer, params in ours.items():
        theirs = by_layer.get(layer)
        if layer in reinit:
            rows.append(TransferRow(layer, REINITIALISED, "--reinit"))
            continue
        if theirs is None:
            rows.append(TransferRow(layer, NEW, "no layer of that name in the source"))
            continue
        mismatch = [f"{p} {tuple(theirs[p].shape) if p in theirs else 'missing'} there, "
                    f"{shapes[full]} here"
                    for p, full in params.items()
                    if p not in theirs or tuple(theirs[p].shape) != shapes[full]]
        if mismatch or set(theirs) != set(params):
            rows.append(TransferRow(layer, REINITIALISED, "; ".join(mismatch) or
                                    "other parameters there"))
            continue
        for p, full in params.items():
            net.params[full] = theirs[p]
        rows.append(TransferRow(layer, LOADED, f"from {path}"))
    for layer in by_layer:
        if layer not in ours:
            rows.append(TransferRow(layer, UNUSED, "no layer of that name here"))
    return rows


def transfer_table(rows: List[TransferRow], frozen: List[str]) -> List[str]:
    """The rows as aligned lines, with each layer's training state."""
    width = max([len("layer")] + [len(r.layer) for r in rows])
    lines = [f"{'layer':<{width}}  {'weights':<14}  {'training':<8}  why"]
    for r in rows:
        training = "-" if r.status == UNUSED else "frozen" if r.layer in frozen else "trained"
        lines.append(f"{r.layer:<{width}}  {r.status:<14}  {training:<8}  {r.why}")
    return lines
