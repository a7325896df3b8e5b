"""convnet-make-batches: an image folder (ImageFolder's layout) to cuda-convnet batches
(CifarBatches' format), decoded and scaled once instead of at every epoch.

Output, in DST: data_batch_1 .. data_batch_T (the training images, shuffled with a fixed seed, so
a batch holds a mix of classes), then data_batch_T+1 .. (the test images, in folder order), and
batches.meta. Each batch is a pickled dict {data: uint8 (num_vis, n), one column per image with
R, G, B planes row-major, as upstream; labels: n ints}. batches.meta holds data_mean (num_vis, 1),
label_names, num_vis, img_size, num_cases_per_batch, and our own keys train_range, test_range,
batch_sizes and source (what it was made from, for the up-to-date check).

Every file is written atomically (a temporary file, then os.replace) and batches.meta last, after
removing the old one: a DST with a batches.meta is complete. Running again on an up-to-date DST
does nothing; otherwise it rewrites DST's batches cleanly (stale data_batch_N removed).
"""

import argparse
import os
import pickle
import re
import sys
from typing import Optional

import numpy as np

from ..files import atomic_write
from ..progress import ProgressLine
from .cifar import format_range, load_pickle
from .errors import DataError
from .folder import ImageFolder

SHUFFLE_SEED = 0
PICKLE_PROTOCOL = 5   # numpy arrays pickle without an extra copy (Python >= 3.8)


def _write_atomic(path: str, obj) -> None:
    with atomic_write(path) as f:
        pickle.dump(obj, f, protocol=PICKLE_PROTOCOL)


def _source(folder: ImageFolder, batch_size: int) -> dict:
    return {"folder": folder.path, "fingerprint": dict(folder.fingerprint),
            "size": folder.size_px, "batch_size": batch_size, "seed": SHUFFLE_SEED,
            "skipped": len(folder.skipped)}


def make_batches(src_folder, dst, size: int = 256, batch_size: int = 3072,
                 workers: Optional[int] = None, progress: bool = True,
                 skip_bad_images: bool = False) -> str:
    """Convert the image folder src_folder into cuda-convnet batches in dst; returns dst."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dst = os.fspath(dst)
    folder = ImageFolder(src_folder, size=size, skip_bad_images=skip_bad_images,
                         workers=workers, progress=progress)
    try:
        return _convert(folder, dst, batch_size, progress)
    finally:
        folder.close()


def _convert(folder: ImageFolder, dst: str, batch_size: int, progress: bool) -> str:
    source = _source(folder, batch_size)
    meta_path = os.path.join(dst, "batches.meta")
    if os.path.exists(meta_path):
        try:
            old = load_pickle(meta_path)
        except DataError:
            old = {}
        sizes = old.get("batch_sizes") or {}
        if old.get("source") == source and all(
                os.path.isfile(os.path.join(dst, f"data_batch_{n}")) for n in sizes):
            if progress:
                print(f"{dst}: up to date", file=sys.stderr)
            return dst
        os.unlink(meta_path)   # from here until the new meta, DST is visibly incomplete
    os.makedirs(dst, exist_ok=True)

    order = {"train": np.random.default_rng(SHUFFLE_SEED).permutation(folder.size("train")),
             "test": np.arange(folder.size("test"))}
    numbers, batch_sizes, n = {"train": [], "test": []}, {}, 1
    plan = []
    for split in ("train", "test"):
        for start in range(0, len(order[split]), batch_size):
            idx = order[split][start:start + batch_size]
            plan.append((n, split, idx))
            numbers[split].append(n)
            batch_sizes[n] = len(idx)
            n += 1
    for name in os.listdir(dst):   # batches of an earlier, larger conversion
        m = re.fullmatch(r"data_batch_(\d+)", name)
        if m and int(m.group(1)) not in batch_sizes:
            os.unlink(os.path.join(dst, name))

    bar = ProgressLine("writing batches", sum(len(i) for _, _, i in plan), bar=True,
                       enabled=progress)
    done = 0
    for num, split, idx in plan:
        raw, labels = folder.raw_images(split, idx)
        data = np.ascontiguousarray(raw.reshape(len(idx), -1).T)   # (num_vis, n): upstream's
        _write_atomic(os.path.join(dst, f"data_batch_{num}"),
                      {"data": data, "labels": [int(v) for v in labels],
                       "batch_label": f"{split} batch {num}"})
        done += len(idx)
        bar.update(done)
    bar.update(done, final=True)

    num_vis = int(np.prod(folder.image_shape))
    _write_atomic(meta_path, {
        "data_mean": folder.mean.reshape(num_vis, 1).astype(np.float32),
        "label_names": list(folder.label_names), "num_vis": num_vis,
        "img_size": folder.size_px, "num_cases_per_batch": batch_size,
        "train_range": format_range(numbers["train"]), "test_range": format_range(numbers["test"]),
        "batch_sizes": batch_sizes, "source": source,
    })
    return dst


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convnet-make-batches", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src", metavar="SRC", help="image folder: SRC/train/<class>/*, "
                                              "SRC/val/<class>/* (or test/)")
    p.add_argument("dst", metavar="DST", help="output folder for data_batch_N and batches.meta")
    p.add_argument("--size", type=int, default=256, help="side of the square images: the "
                   "shorter side is scaled to it, then the centre is cropped (default 256)")
    p.add_argument("--batch-size", type=int, default=3072, help="images per batch file "
                   "(default 3072, as cuda-convnet2's ImageNet batches)")
    p.add_argument("--workers", type=int, help="decoding threads (default min(8, CPUs))")
    p.add_argument("--skip-bad-images", action="store_true", help="leave out unreadable, "
                   "truncated or tiny images (with a warning) instead of stopping at the first")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 1 or args.batch_size < 1:
        print("convnet-make-batches: error: --size and --batch-size must be >= 1", file=sys.stderr)
        return 2
    try:
        dst = make_batches(args.src, args.dst, size=args.size, batch_size=args.batch_size,
                           workers=args.workers, progress=not args.quiet,
                           skip_bad_images=args.skip_bad_images)
    except DataError as e:
        print(f"convnet-make-batches: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
