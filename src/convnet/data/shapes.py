"""The shapes of a config's data layers, taken from the data as cuda-convnet did: its configs
never state a data layer's size (the data provider gives it), so convnet-train asks the dataset
before it builds the net.

An image layer (dataIdx=0) without shape= gets the size of the images the provider gives, or of
their crop when --inner-size or --crop-border is set: batches.meta's image size for cuda-convnet
batches, the IDX header's (1 channel) for MNIST files, 256x256 RGB for image folders (the size
they are scaled to). On the built-in synthetic set it gets --synthetic-shape, or by default the
channels= of the layers that read it (3 when none says) at MNIST's 28x28 for one channel, at
ImageNet's 224x224 crops when a convolution reads it with a stride of 4 or more (AlexNet's first
layer), and at CIFAR-10's 32x32 otherwise. A label layer (any other dataIdx) holds one class
index: shape 1.

A stated shape= is checked against the data: one the data cannot be brought to (another channel
count, a crop larger than the images, a size other than --inner-size's) is a ConfigError naming
the config file, line, layer and key."""

import argparse
from typing import Dict, List, Optional, Sequence, Tuple

from ..config import ConfigError, LayerSpec
from .cifar import batches_image_shape
from .errors import DataError
from .idx import idx_image_size
from .open import dataset_kind, folder_size
from .setup import crop_for, provider_name

Shape = Tuple[int, ...]
LABEL_SHAPE: Shape = (1,)          # one class index per sample
SYNTHETIC_PROVIDERS = ("synthetic", "dummy")
# The synthetic set's default size (module doc): MNIST's digits for one channel, ImageNet crops
# for a net that reads its input with AlexNet's stride of 4, else CIFAR-10's images.
MNIST_SIZE, IMAGENET_SIZE, CIFAR_SIZE = 28, 224, 32
IMAGENET_STRIDE = 4


def shape_option(text: str) -> Shape:
    """argparse type of --synthetic-shape: "C,H,W" with positive integers."""
    try:
        shape = tuple(int(p) for p in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give C,H,W (positive integers, e.g. "
                                         "3,32,32)")
    return shape


def _read_value(spec: LayerSpec, key: str, source: str) -> Optional[int]:
    """spec's key for its input `source` (conv and local layers keep one value per input)."""
    value = spec.get(key)
    if isinstance(value, (list, tuple)):
        value = value[spec.inputs.index(source)]
    return None if value is None else int(value)


def default_synthetic_shape(specs: Sequence[LayerSpec], image_layer: str) -> Shape:
    """The synthetic set's image shape for a net whose image layer states none (module doc)."""
    readers = [s for s in specs if image_layer in s.inputs]
    channels = {_read_value(s, "channels", image_layer) for s in readers} - {None}
    c = channels.pop() if len(channels) == 1 else 3
    strides = {_read_value(s, "stride", image_layer) for s in readers
               if s.type in ("conv", "local")} - {None}
    if c == 1:
        size = MNIST_SIZE
    elif strides and max(strides) >= IMAGENET_STRIDE:
        size = IMAGENET_SIZE
    else:
        size = CIFAR_SIZE
    return (c, size, size)


def image_shape(path, kind: str, net_shape: Optional[Sequence[int]] = None) -> Shape:
    """The (C, H, W) of the images provider `kind` gives for a data layer of net_shape (None:
    the data's own), read from headers only: IDX images are brought to the layer's shape, image
    folders scaled to folder_size, cuda-convnet batches are as stored."""
    if kind == "cifar":
        return batches_image_shape(path)
    if kind == "idx":
        if net_shape is None:
            return (1,) + idx_image_size(path)
        if net_shape[0] not in (1, 3):
            raise DataError(path, f"IDX images are grey: the net's data layer wants "
                                  f"{net_shape[0]} channels, they give 1 (or 3, repeated)")
        return tuple(int(s) for s in net_shape)
    size = folder_size(net_shape)
    return (3, size, size)


def _mismatch(spec: LayerSpec, problem: str) -> ConfigError:
    where = spec.location("shape")
    stated = ",".join(map(str, spec["shape"]))
    return ConfigError(f"{stated} does not fit the data: {problem}",
                       file=where.file if where else None, line=where.line if where else None,
                       section=spec.name, key="shape")


def data_layer_shapes(specs: Sequence[LayerSpec], path=None, provider: Optional[str] = None, *,
                      inner_size: Optional[int] = None, crop_border: Optional[int] = None,
                      synthetic_shape: Optional[Sequence[int]] = None) -> Dict[str, Shape]:
    """{data layer name: sample shape} for the config's data layers (specs, as parsed), from the
    dataset at `path` (None, or provider "synthetic": the built-in synthetic set) with the crop
    options convnet-train passes to for_net. Stated shapes are checked (module doc)."""
    data = [s for s in specs if s.type == "data"]
    images: List[LayerSpec] = [s for s in data if s["dataIdx"] == 0]
    shapes: Dict[str, Shape] = {}
    for spec in data:
        if spec["dataIdx"] != 0:
            stated = spec.get("shape")
            if stated is not None and tuple(stated) != LABEL_SHAPE:
                raise _mismatch(spec, "a labels layer (dataIdx other than 0) holds one class "
                                      "index per sample: shape=1, or leave shape= out")
            shapes[spec.name] = LABEL_SHAPE
    if not images:
        return shapes
    if path is None or provider in SYNTHETIC_PROVIDERS:
        given = tuple(synthetic_shape) if synthetic_shape is not None else None
        for spec in images:
            stated = spec.get("shape")
            if stated is not None and given is not None and tuple(stated) != given:
                raise _mismatch(spec, f"--synthetic-shape is {','.join(map(str, given))}")
            shapes[spec.name] = tuple(stated or given
                                      or default_synthetic_shape(specs, images[0].name))
        return shapes
    kind = dataset_kind(path, provider_name(provider))
    own = image_shape(path, kind)
    if inner_size is not None and crop_border is not None:
        raise ValueError("give --inner-size or --crop-border, not both")
    crop = inner_size or (own[1] - 2 * crop_border if crop_border is not None else None)
    if crop is not None and crop < 1:
        raise ValueError(f"--crop-border {crop_border} leaves nothing of {own[1]}x{own[2]} "
                         "images")
    given = (own[0], crop, crop) if crop is not None else own
    taken = f"; without shape= the layer takes the data's {'x'.join(map(str, given))}"
    for spec in images:
        stated = spec.get("shape")
        if stated is not None and len(stated) != 3:
            raise _mismatch(spec, f"the {kind} data are images, C,H,W{taken}")
        shape = tuple(stated) if stated is not None else given
        try:
            crop_for(path, image_shape(path, kind, shape), shape, inner_size, crop_border)
        except (DataError, ValueError) as e:
            if stated is None:
                raise
            raise _mismatch(spec, f"{e}{taken}") from None
        shapes[spec.name] = shape
    return shapes
