"""`python -m convnet.bench --data [PATH]`: does the input pipeline keep up? Times the background
loader (read, decode, random crop, reflection, PCA colour noise) on a dataset, in images/s for each
worker count, so the figure can be set against the net's training rate: if the GPU trains faster
than the loader delivers, training waits on the data.

The files are read once before timing (a warm-up pass), so the figures are the CPU side the paper
overlaps with the GPU (decoding and augmentation) with the files in the page cache; a cold disk
only lowers them. Without PATH a small synthetic JPEG folder is made and measured, a demo of the
tool rather than a figure about any real dataset.
"""

import json
import os
import shlex
import sys
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from ..data.augment import AugmentedDataset, Augmentation, ColorPCA
from ..data.loader import Loader


def make_demo_jpegs(directory, train_per_class: int = 16, val_per_class: int = 4,
                    classes: int = 4, size=(320, 256), seed: int = 0, quality: int = 90) -> str:
    """Write a small image folder, DIR/train/<class>/*.jpg and DIR/val/<class>/*.jpg, of
    `size` (width, height) JPEGs: a class-tinted smooth gradient with pixel noise, so that
    decoding costs about what a photograph of that size does (flat images decode unrealistically
    fast). Returns DIR."""
    from PIL import Image

    width, height = size
    rng = np.random.default_rng([seed, 0x6a706567])
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for k in range(classes):
            folder = os.path.join(directory, split, f"class{k}")
            os.makedirs(folder, exist_ok=True)
            tint = rng.uniform(40, 215, 3)
            for i in range(per_class):
                angle = rng.uniform(0, 2 * np.pi)
                ramp = np.cos(angle) * xx + np.sin(angle) * yy
                pixels = (tint + 60 * ramp[..., None]
                          + rng.normal(0, 20, (height, width, 3)))
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
                image.save(os.path.join(folder, f"{i:04d}.jpg"), quality=quality)
    return str(directory)


def _epoch_order(n: int, count: int, seed: int = 0) -> np.ndarray:
    """`count` training indices: shuffled passes over the n images, as many as needed."""
    rng = np.random.default_rng([seed, 1])
    passes = [rng.permutation(n) for _ in range(-(-count // n))]
    return np.concatenate(passes)[:count]


def bench_loader(path=None, provider: Optional[str] = None, crop: int = 224,
                 color_noise: float = 0.1, workers: Sequence[int] = (1, 2), batches: int = 20,
                 batch_size: int = 64, pca_samples: int = 64, log=None) -> dict:
    """Images/s of the training loader per worker count. `path` is a dataset for
    convnet.data.open.open_dataset (with `provider` naming its type, else detected), an already
    open Provider, or None for a demo folder made in a temporary directory. Returns
    {"meta": {...}, "rows": [{"workers", "images_per_s", "images_per_s_per_worker", "seconds",
    "images"}, ...]}."""
    workers = [int(w) for w in workers]
    if not workers or min(workers) < 1:
        raise ValueError(f"bench_loader: worker counts must be >= 1, got {workers}")
    if batches < 1 or batch_size < 1:
        raise ValueError(f"bench_loader: batches and batch_size must be >= 1, got {batches}, "
                         f"{batch_size}")
    log = log or (lambda line: None)
    if path is None:
        with tempfile.TemporaryDirectory(prefix="convnet-bench-data-") as tmp:
            log(f"no dataset given: timing a synthetic JPEG folder in {tmp}")
            make_demo_jpegs(tmp)
            result = bench_loader(tmp, provider, crop, color_noise, workers, batches,
                                  batch_size, pca_samples, log)
            result["meta"]["dataset"] = "synthetic JPEG folder (demo)"
            return result
    if hasattr(path, "images"):   # an open Provider
        data, opened, name = path, False, getattr(path, "name", type(path).__name__)
    else:
        from ..data.open import open_dataset   # lazily: the bench's op timings do not need it
        data = open_dataset(path, provider=provider, shape=(3, crop, crop))
        opened, name = True, str(path)
    try:
        return _bench(data, name, crop, color_noise, workers, batches, batch_size, pca_samples,
                      log)
    finally:
        if opened:
            data.close()


def _bench(data, name, crop, color_noise, workers, batches, batch_size, pca_samples, log):
    pca, pca_seconds = None, None
    if color_noise > 0:
        t0 = time.perf_counter()
        pca = ColorPCA.from_provider(data, samples=pca_samples)
        pca_seconds = time.perf_counter() - t0
        log(f"colour PCA from {min(pca_samples, data.size('train'))} training images: "
            f"{pca_seconds:.2f} s, eigenvalues {np.array2string(pca.eigenvalues, precision=1)}")
    c, h, w = data.image_shape
    augmentation = Augmentation(crop=crop if crop and (h, w) != (crop, crop) else None,
                                flip=True, color_noise=color_noise, pca=pca)
    dataset = AugmentedDataset(data, augmentation, seed=0)
    order = _epoch_order(data.size("train"), batches * batch_size)

    def run(n_workers):
        start = time.perf_counter()
        with Loader(dataset, "train", order, batch_size, key=lambda b: (0, b),
                    workers=n_workers, prefetch=2 * n_workers) as loader:
            for _ in loader:
                pass
        return time.perf_counter() - start

    run(max(workers))   # warm-up: page cache, allocator, Pillow's decoder tables
    rows = []
    for n_workers in workers:
        seconds = run(n_workers)
        rate = order.size / seconds
        rows.append({"workers": n_workers, "images_per_s": rate,
                     "images_per_s_per_worker": rate / n_workers, "seconds": seconds,
                     "images": int(order.size)})
    meta = {"dataset": name, "provider": getattr(data, "name", type(data).__name__),
            "image_shape": list(data.image_shape), "output_shape": list(dataset.shape),
            "crop": augmentation.crop, "flip": True, "color_noise": color_noise,
            "pca_seconds": pca_seconds, "batches": batches, "batch_size": batch_size,
            "train_images": data.size("train"), "cpu_count": os.cpu_count()}
    return {"meta": meta, "rows": rows}


def table(result) -> list:
    """The console lines: one row per worker count."""
    lines = [f"{'workers':>7}  {'images/s':>10}  {'images/s per worker':>19}"]
    for r in result["rows"]:
        lines.append(f"{r['workers']:>7}  {r['images_per_s']:>10.1f}  "
                     f"{r['images_per_s_per_worker']:>19.1f}")
    return lines


def main(args, argv) -> int:
    """The --data mode of python -m convnet.bench (args from its parser, argv for the record)."""
    try:
        workers = [int(w) for w in args.data_workers.split(",") if w.strip()]
    except ValueError:
        workers = []
    if not workers or min(workers) < 1:
        sys.exit(f"convnet.bench: --data-workers wants a comma-separated list of counts >= 1, "
                 f"got {args.data_workers!r}")
    batches, batch_size = (3, 16) if args.quick else (20, 64)
    print(f"command: python -m convnet.bench {shlex.join(argv)}", flush=True)
    result = bench_loader(args.data or None, provider=args.data_provider, workers=workers,
                          batches=batches, batch_size=batch_size,
                          log=lambda line: print(line, flush=True))
    meta = result["meta"]
    print(f"dataset: {meta['dataset']} ({meta['provider']}, {meta['train_images']} training "
          f"images of {'x'.join(map(str, meta['image_shape']))}); {batches} batches of "
          f"{batch_size}, crop {meta['crop'] or 'none'}, flips, colour noise "
          f"{meta['color_noise']}; files in the page cache; {meta['cpu_count']} CPUs", flush=True)
    for line in table(result):
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.json}")
    return 0
