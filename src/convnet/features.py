"""A layer's features for a whole dataset split, on disk and in memory, and the nearest
neighbours among them (the paper's Figure 4, right).

write_features saves a split's activations at one layer as numbered batch files in a folder, each
an .npz with `data` (images, features) float32 and `labels` (images,) int64, and a meta.json
saying which layer, split, run and shape they came from; read_features loads them back.
nearest_neighbours finds, for each query row, the base rows nearest in Euclidean distance with
blocked matrix products (|q|^2 - 2 q.b + |b|^2), so 60,000 x 4,096 features take seconds."""

import json
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .files import atomic_write
from .progress import ProgressLine

META = "meta.json"
BATCH_FILE = "data_batch_{}.npz"   # numbered from 1, as cuda-convnet's batch files
FILE_IMAGES = 1024                 # images per batch file


class FeatureError(ValueError):
    """A feature folder that cannot be written or read; the message names it."""


def require_layer(net, layer: str, what: str) -> None:
    """FeatureError unless the net has a layer of that name; `what` is the option asking."""
    if layer not in {s.name for s in net.specs}:
        raise FeatureError(f"{what} {layer}: the net has no layer {layer!r} (its layers: "
                           f"{', '.join(s.name for s in net.specs)})")


def plain_batch(data, split: str, indices) -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels of `split` as the net sees test images: the centre view, no random crop
    or reflection even for the training split (features must not depend on the draw)."""
    provider = getattr(data, "provider", None)
    if provider is None:            # a dataset without augmentation (the synthetic set)
        return data.batch(split, indices)
    images, labels = provider.images(split, indices)
    return data.augmentation.test(images), np.asarray(labels, np.int64)


def layer_features(net, data, layer: str, split: str, indices=None, *, batch_size: int = 128,
                   progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(features (N, D) float32, labels (N,)) of the split's images (all, or `indices`) at
    `layer`, each image's output flattened."""
    if indices is None:
        indices = np.arange(data.size(split))
    indices = np.asarray(indices, np.int64)
    line = ProgressLine(f"features of {layer} ({split})", len(indices), enabled=progress)
    feats, labels = None, np.empty(len(indices), np.int64)
    for start in range(0, len(indices), batch_size):
        x, y = plain_batch(data, split, indices[start:start + batch_size])
        f = np.asarray(net.features(x, layer), np.float32).reshape(len(x), -1)
        if feats is None:
            feats = np.empty((len(indices), f.shape[1]), np.float32)
        feats[start:start + len(x)], labels[start:start + len(x)] = f, y
        line.update(start + len(x))
    line.update(len(indices), final=True)
    if feats is None:
        raise FeatureError(f"the {split} split is empty: no features to compute")
    return feats, labels


def write_features(net, data, layer: str, folder, *, split: str = "test", batch_size: int = 128,
                   file_images: int = FILE_IMAGES, run: Optional[str] = None,
                   progress: bool = False) -> dict:
    """Writes the split's features at `layer` into `folder` (created; earlier batch files there
    are replaced) as data_batch_1.npz, ... of file_images images each, computed batch_size at a
    time, then meta.json. Each file is written atomically, meta.json last, so a folder with a
    meta.json is complete. Returns the meta."""
    require_layer(net, layer, "--write-features")
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):   # a shorter set must not leave old batches behind
            if name == META or (name.startswith("data_batch_") and name.endswith(".npz")):
                os.unlink(os.path.join(folder, name))
    except OSError as e:
        raise FeatureError(f"cannot write features to {folder}: {e}") from None
    total = data.size(split)
    line = ProgressLine(f"writing features of {layer} ({split})", total, enabled=progress)
    batches, dim = 0, None
    for start in range(0, total, file_images):
        indices = np.arange(start, min(total, start + file_images))
        feats, labels = layer_features(net, data, layer, split, indices, batch_size=batch_size)
        dim = feats.shape[1]
        batches += 1
        path = os.path.join(folder, BATCH_FILE.format(batches))
        try:
            with atomic_write(path, durable=False) as f:
                np.savez(f, data=feats, labels=labels)
        except OSError as e:
            raise FeatureError(f"cannot write {path}: {e}") from None
        line.update(start + len(indices))
    line.update(total, final=True)
    if batches == 0:
        raise FeatureError(f"the {split} split is empty: no features to write")
    meta = {"layer": layer, "split": split, "images": total, "batches": batches,
            "batch_images": file_images, "features": dim,
            "layer_shape": list(net.output_shape(layer)), "run": run, "step": net.step}
    with atomic_write(os.path.join(folder, META), durable=False) as f:
        f.write((json.dumps(meta, indent=1) + "\n").encode())
    return meta


def read_features(folder) -> Tuple[np.ndarray, np.ndarray, dict]:
    """(features (N, D), labels (N,), meta) from a folder write_features filled."""
    folder = os.fspath(folder)
    meta_path = os.path.join(folder, META)
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FeatureError(f"{folder}: no {META}; is it a feature folder written by "
                           "convnet-train --write-features (and did the writing finish)?") from None
    except (OSError, ValueError) as e:
        raise FeatureError(f"{meta_path}: {e}") from None
    feats, labels = [], []
    for b in range(1, int(meta["batches"]) + 1):
        path = os.path.join(folder, BATCH_FILE.format(b))
        try:
            with np.load(path) as z:
                feats.append(z["data"])
                labels.append(z["labels"])
        except (OSError, KeyError, ValueError) as e:
            raise FeatureError(f"{path}: {e}") from None
    data, labels = np.concatenate(feats), np.concatenate(labels)
    if data.shape != (meta["images"], meta["features"]):
        raise FeatureError(f"{folder}: the batch files hold {data.shape[0]} x {data.shape[1]} "
                           f"features; {META} says {meta['images']} x {meta['features']}")
    return data, labels, meta


@dataclass
class Neighbours:
    indices: np.ndarray     # (queries, k) rows of the base, nearest first
    distances: np.ndarray   # (queries, k) their Euclidean distances


def nearest_neighbours(queries: np.ndarray, base: np.ndarray, k: int,
                       block: int = 8192) -> Neighbours:
    """The k rows of base (N, D) nearest to each row of queries (Q, D) in Euclidean distance,
    nearest first (ties: the lower index). Candidates come from |q|^2 - 2 q.b + |b|^2, a block of
    `block` base rows at a time (one float32 matrix product each), each block's best merged with
    the best so far; the 2k best candidates are then measured again directly in float64 (the
    expansion loses the small distances to cancellation) and the k nearest kept."""
    queries = np.ascontiguousarray(queries, np.float32)
    base = np.ascontiguousarray(base, np.float32)
    if queries.ndim != 2 or base.ndim != 2 or queries.shape[1] != base.shape[1]:
        raise ValueError(f"nearest_neighbours: queries {queries.shape} and base {base.shape} "
                         "must be 2-D with the same number of columns")
    k = min(int(k), base.shape[0])
    if k < 1:
        raise ValueError("nearest_neighbours: k must be >= 1 and the base not empty")
    kept = min(2 * k, base.shape[0])
    q_norms = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)[:, None]
    best_d = np.full((len(queries), 0), np.inf)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, base.shape[0], block):
        b = base[start:start + block]
        d2 = np.einsum("ij,ij->i", b, b, dtype=np.float64)[None, :] + q_norms
        d2 -= 2.0 * (queries @ b.T)
        kb = min(kept, b.shape[0])
        part = np.argpartition(d2, kb - 1, axis=1)[:, :kb]
        best_d, best_i = _nearest_first(
            np.concatenate([best_d, np.take_along_axis(d2, part, axis=1)], axis=1),
            np.concatenate([best_i, part + start], axis=1), kept)
    exact = np.linalg.norm(base[best_i].astype(np.float64) - queries[:, None].astype(np.float64),
                           axis=2)
    distances, indices = _nearest_first(exact, best_i, k)
    return Neighbours(indices=indices, distances=distances)


def _nearest_first(distances: np.ndarray, indices: np.ndarray, k: int):
    """The k smallest distances of each row and their indices, ascending (ties: lower index)."""
    order = np.lexsort((indices, distances), axis=1)[:, :k]
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)
