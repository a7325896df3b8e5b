"""A layer's learned filters as one image: a grid of tiles, in colour when the filters read the
three channels of the input images (the paper's Figure 3: conv1's 96 11x11x3 filters), otherwise
one grey tile per input channel (each filter a row of its first channels).

Contrast: by default one linear scale maps the smallest weight shown to 0 and the largest to 1,
so that the tiles' relative magnitudes show (a dead filter is flat grey); per_filter scales each
filter (all its channels together) to fill [0, 1] on its own, which shows every filter's pattern
however small its weights."""

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .run import ShowError

# The layer types whose weights have a spatial layout over their input.
FILTER_TYPES = ("conv", "local", "fc")


@dataclass
class FilterGrid:
    image: np.ndarray          # (H, W, 3) colour or (H, W) grey, values in [0, 1], NaN in gaps
    colour: bool
    tile: Tuple[int, int]      # (kh, kw) of one tile
    # one per tile: (filter, channel, top, left); channel is None for a colour tile
    tiles: List[Tuple[int, Optional[int], int, int]]
    filters: int               # filters shown (of total_filters)
    channels: int              # channels shown per filter (grey; of total_channels)
    total_filters: int
    total_channels: int
    per_filter: bool


def _first_weights(net, layer: str) -> str:
    names = [n for n in net.param_shapes() if n.startswith(f"{layer}.weights")]
    return sorted(names)[0] if names else ""


def _is_image_input(net, spec) -> bool:
    return len(net.output_shape(spec.inputs[0])) == 3


def layers_with_filters(net) -> List[str]:
    """The layers whose weights can be drawn as image filters: conv and local layers, and fc
    layers whose (first) input is an image-shaped layer (C, H, W)."""
    return [s.name for s in net.specs if s.type in FILTER_TYPES and _first_weights(net, s.name)
            and (s.type != "fc" or _is_image_input(net, s))]


def layer_filters(net, layer: str) -> Tuple[np.ndarray, bool, str]:
    """(weights (F, C, kh, kw), colour, what) for `layer`: colour when the filters read an
    RGB data layer; what says which weights they are (for a picture's title)."""
    specs = {s.name: s for s in net.specs}
    have = ", ".join(layers_with_filters(net)) or "none"
    if layer not in specs:
        raise ShowError(f"--show-filters {layer}: the net has no layer {layer!r}; layers with "
                        f"filters: {have}")
    spec = specs[layer]
    name = _first_weights(net, layer)
    if spec.type not in FILTER_TYPES or not name:
        raise ShowError(f"--show-filters {layer}: layer {layer!r} ({spec.type}) has no weights; "
                        f"layers with filters: {have}")
    weights = np.asarray(net.params[name], np.float64)
    source = spec.inputs[0]
    what = f"{layer} ({spec.type}, {name})"
    if spec.type == "local":
        # (OH, OW, F, C, kh, kw): a filter per output position; show the centre position's
        oh, ow = weights.shape[:2]
        weights = weights[oh // 2, ow // 2]
        what += f" at output position ({oh // 2}, {ow // 2})"
    elif spec.type == "fc":
        shape = net.output_shape(source)
        if len(shape) != 3:
            raise ShowError(f"--show-filters {layer}: fc layer {layer!r} reads {source!r} of shape "
                            f"{tuple(shape)}, not an image; its weights are not filters; layers "
                            f"with filters: {have}")
        weights = weights.reshape((weights.shape[0],) + tuple(shape))
    colour = weights.shape[1] == 3 and specs[source].type == "data"
    return weights, colour, what


def _normalise(filters: np.ndarray, per_filter: bool) -> np.ndarray:
    axes = tuple(range(1, filters.ndim)) if per_filter else None
    lo = filters.min(axis=axes, keepdims=True)
    span = filters.max(axis=axes, keepdims=True) - lo
    flat = span == 0   # a constant filter (or grid) is drawn mid-grey
    return np.where(flat, 0.5, (filters - lo) / np.where(flat, 1.0, span))


def _columns(n: int) -> int:
    """Tiles per row: a divisor of n near its square root when there is one (96 -> 12 x 8),
    else the square root rounded up."""
    root = math.ceil(math.sqrt(n))
    for c in range(root, min(n, 2 * root) + 1):
        if n % c == 0:
            return c
    return root


def filter_grid(weights: np.ndarray, colour: bool, *, per_filter: bool = False,
                max_filters: Optional[int] = None, max_channels: int = 8,
                gap: int = 1) -> FilterGrid:
    """The grid image of weights (F, C, kh, kw): the first max_filters filters, and in grey the
    first max_channels channels of each. Tile (f, c) holds filter f's channel c normalised (see
    the module's docstring); in colour, tile f holds filter f's three channels as RGB."""
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 4:
        raise ValueError(f"filters must be (F, C, kh, kw), got shape {weights.shape}")
    total_f, total_c, kh, kw = weights.shape
    if colour and total_c != 3:
        raise ValueError(f"colour tiles need 3 channels, got {total_c}")
    nf = total_f if max_filters is None else max(1, min(total_f, max_filters))
    nc = 3 if colour else max(1, min(total_c, max_channels))
    shown = _normalise(weights[:nf, :nc], per_filter)
    tiles = []
    if colour:
        cols = _columns(nf)
        rows = math.ceil(nf / cols)
        image = np.full((rows * (kh + gap) - gap, cols * (kw + gap) - gap, 3), np.nan)
        for f in range(nf):
            top, left = (f // cols) * (kh + gap), (f % cols) * (kw + gap)
            image[top:top + kh, left:left + kw] = shown[f].transpose(1, 2, 0)
            tiles.append((f, None, top, left))
    else:
        # each filter a row of nc tiles; filters side by side, a wider gap between them, as many
        # per row as make the grid roughly square
        per_row = max(1, min(nf, round(math.sqrt(nf * (kh + gap) / (nc * (kw + gap))))))
        rows = math.ceil(nf / per_row)
        block = nc * (kw + gap) - gap + 3 * gap    # a filter's row of tiles and the gap after it
        image = np.full((rows * (kh + gap) - gap, per_row * block - 3 * gap), np.nan)
        for f in range(nf):
            top = (f // per_row) * (kh + gap)
            for c in range(nc):
                left = (f % per_row) * block + c * (kw + gap)
                image[top:top + kh, left:left + kw] = shown[f, c]
                tiles.append((f, c, top, left))
    return FilterGrid(image=image, colour=colour, tile=(kh, kw), tiles=tiles, filters=nf,
                      channels=nc, total_filters=total_f, total_channels=total_c,
                      per_filter=per_filter)
