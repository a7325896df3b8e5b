"""Test images beside the training images whose features at a layer are nearest (the paper's
Figure 4, right): the features of the first test images and of the whole training split (computed,
or read from a folder convnet-train --write-features filled), searched by
convnet.features.nearest_neighbours."""

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..features import (FeatureError, layer_features, nearest_neighbours, plain_batch,
                        read_features, require_layer)
from .preds import class_names, display_images
from .run import ShowError


@dataclass
class NeighbourPictures:
    layer: str
    queries: np.ndarray            # (Q, H, W[, 3]) test images for display, values in [0, 1]
    query_labels: np.ndarray       # (Q,)
    neighbours: np.ndarray         # (Q, K, H, W[, 3]) the nearest training images, nearest first
    neighbour_labels: np.ndarray   # (Q, K)
    distances: np.ndarray          # (Q, K) Euclidean distances of the features
    class_names: List[str]


def training_features(net, data, layer: str, folder: Optional[str], progress: bool):
    """(features, labels) of the whole training split at `layer`: read from `folder` when given
    (checked to be that layer's, of the training split, of this many images), else computed."""
    if folder is None:
        return layer_features(net, data, layer, "train", progress=progress)
    try:
        feats, labels, meta = read_features(folder)
    except FeatureError as e:
        raise ShowError(str(e)) from None
    size = data.size("train")
    if meta.get("layer") != layer or meta.get("split") != "train" or meta["images"] != size:
        raise ShowError(f"{folder} holds the features of layer {meta.get('layer')!r}, "
                        f"{meta.get('split')} split, {meta['images']} images; the neighbours of "
                        f"{layer!r} need those of the training split ({size} images): write them "
                        f"with convnet-train -f RUN --write-features {layer} --feature-split "
                        "train --feature-path DIR")
    return feats, labels


def neighbour_pictures(net, data, layer: str, queries: int = 5, k: int = 6,
                       features_folder: Optional[str] = None,
                       progress: bool = True) -> NeighbourPictures:
    try:
        require_layer(net, layer, "--show-neighbours")
    except FeatureError as e:
        raise ShowError(str(e)) from None
    q = min(queries, data.size("test"))
    if q < 1 or data.size("train") < 1:
        raise ShowError("neighbours need test and training images; a split is empty")
    q_feats, q_labels = layer_features(net, data, layer, "test", np.arange(q))
    base, base_labels = training_features(net, data, layer, features_folder, progress)
    found = nearest_neighbours(q_feats, base, k)
    shown_k = found.indices.shape[1]
    x_test, _ = plain_batch(data, "test", np.arange(q))
    x_train, _ = plain_batch(data, "train", found.indices.ravel())
    train_images = display_images(data, np.asarray(x_train, np.float32))
    classes = int(max(q_labels.max(), base_labels.max())) + 1
    return NeighbourPictures(
        layer=layer, queries=display_images(data, np.asarray(x_test, np.float32)),
        query_labels=q_labels,
        neighbours=train_images.reshape((q, shown_k) + train_images.shape[1:]),
        neighbour_labels=base_labels[found.indices], distances=found.distances,
        class_names=class_names(data, net, classes))
