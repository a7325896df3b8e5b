"""convnet-train: train a net from cuda-convnet config files, with cuda-convnet's options (both
versions; the files it reads: docs/cuda-convnet-format.md). Without --data-path it trains on a
built-in synthetic dataset shaped for the net's data layer, so any config can be tried on a fresh
machine."""

import argparse
import hashlib
import os
import sys
import time
import warnings
from dataclasses import asdict, replace
from functools import partial

import numpy as np

from .. import __version__, checkpoint, runs, set_num_threads, set_precision
from ..config import ConfigError, ConfigWarning
from ..cuda_convnet_checkpoint import is_cuda_convnet_checkpoint
from ..data import DataError, SyntheticDataset, data_layer_shapes, for_net
from ..data.shapes import shape_option
from ..distributed import DEFAULT_TIMEOUT, DataParallel, DistributedError
from ..features import FeatureError, write_features
from ..gradcheck import KINK_STEP, STEP, check_net_gradients, numeric_derivative
from ..net import Net
from ..transfer import TransferError, init_from, select_layers, transfer_table
from ..trainer import TrainingDiverged, TrainOptions, Trainer, TrainState
from .train_parallel import local_rank, run_ranks
from .train_run import (DATA_OPTIONS, data_options, first_line, given_options, keep_run_options,
                        last_line, save_target)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convnet-train", description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("net")
    g.add_argument("--layers", "--layer-def", dest="layers", metavar="CFG",
                   help="layer-definition file (required unless -f is given)")
    g.add_argument("--params", "--layer-params", dest="params", metavar="CFG",
                   help="layer-parameter file (re-read on resume, as upstream)")
    g.add_argument("-f", "--load-file", dest="load_file", metavar="RUN",
                   help="continue a run: its run folder or checkpoint file; its layer "
                        "definitions, data and training options are kept unless given here, "
                        "--params is re-read when given, and the run is saved back where it "
                        "was; a cuda-convnet checkpoint (file or run directory) is imported, "
                        "with --layers giving its layer definitions")
    g.add_argument("--init-from", metavar="RUN", help="start a new run from another run's "
                   "weights (a run folder, checkpoint or Net.save file): every layer with the "
                   "same name and parameter shapes is loaded, the others (a new head) keep the "
                   "config's initialisation; a table says which")
    g.add_argument("--reinit", metavar="LAYERS", help="with --init-from: layers to initialise "
                   "from the config even where the source has them (a new head for new "
                   "classes); names and ranges as --freeze")
    g.add_argument("--freeze", metavar="LAYERS", help="layers whose weights stay as they are: "
                   "names and ranges A-B in net order, comma-separated (e.g. conv1-conv2 for "
                   "partial fine-tuning); no gradients are computed for them, nor below the "
                   "lowest layer that trains")
    g.add_argument("--seed", type=int, default=0, help="seed of initialisation, batch order, "
                   "dropout and the synthetic data")
    g.add_argument("--strict", action="store_true", help="unknown config keys are errors")
    g = p.add_argument_group("data")
    g.add_argument("--data-path", metavar="PATH", help="the dataset: a folder of cuda-convnet "
                   "batches (data_batch_N + batches.meta, e.g. CIFAR-10's python release or "
                   "convnet-make-batches output), an ImageNet-style folder (train/<class>/*, "
                   "val/<class>/*), or MNIST IDX files; without it the built-in synthetic set")
    g.add_argument("--data-provider", help="cifar, cifar-cropped, image (batches), folder, idx, "
                   "mnist or synthetic; default: recognised from the files")
    g.add_argument("--train-range", metavar="A-B", help="training batch files (cuda-convnet "
                   "batches; default: all but the last)")
    g.add_argument("--test-range", metavar="A-B", help="test batch files (default: the last)")
    g.add_argument("--classes", metavar="LIST", help="train and test on these classes only, "
                   "numbered from 0 in ascending order: a range 5-9 or a list 0,2,4 (transfer "
                   "learning from one part of a dataset to another)")
    g.add_argument("--inner-size", type=int, help="crop size (v2); default: the data layer's "
                   "size when the images are larger")
    g.add_argument("--crop-border", type=int, help="crop this many pixels from each side (v1)")
    g.add_argument("--no-flip", action="store_true", help="no horizontal reflections of the "
                   "training crops")
    g.add_argument("--color-noise", type=float, default=0.0, help="std of the paper's PCA colour "
                   "noise coefficients (the paper: 0.1)")
    g.add_argument("--multiview-test", action="store_true", help="test on ten views (four corners "
                   "and centre, and their reflections), averaging the softmax")
    g.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images with a "
                   "warning and a count instead of stopping")
    g.add_argument("--data-workers", type=int, default=2, help="background loader threads "
                   "(0: load in the training thread)")
    g.add_argument("--synthetic-classes", type=int, default=10, help="classes of the synthetic set")
    g.add_argument("--synthetic-train-size", type=int, default=2560,
                   help="training images of the synthetic set")
    g.add_argument("--synthetic-test-size", type=int, default=256,
                   help="test images of the synthetic set")
    g.add_argument("--synthetic-shape", type=shape_option, metavar="C,H,W",
                   help="image shape of the synthetic set for a data layer without shape=; "
                        "default: the channels= of the layers reading it, at 28x28 for 1 "
                        "channel, 224x224 when they read it with a stride of 4 or more "
                        "(AlexNet), 32x32 otherwise")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=2, help="passes over the training set")
    g.add_argument("--mini", type=int, default=32, help="mini-batch size")
    g.add_argument("--test-freq", type=int, default=20, help="test (and save) every this many "
                   "batches")
    g.add_argument("--test-batches", type=int, default=2, metavar="N",
                   help="mini-batches of the test set per test during training, taken in turn "
                        "through it (0: all of it every time); the run's last test sees all of "
                        "it")
    g.add_argument("--test-only", action="store_true", help="evaluate -f's run on its test "
                   "data and exit, writing nothing")
    g.add_argument("--lr-schedule", choices=["config", "paper", "step", "exp"], default="config",
                   help="config: the params file's rates and schedules; on top of them, paper: "
                        "divide all rates by 10 when the test error stops improving; step: "
                        "multiply them by --lr-gamma every --lr-step epochs; exp: multiply them "
                        "by --lr-gamma per epoch, continuously")
    g.add_argument("--lr-patience", type=int, default=3, help="tests without improvement before "
                   "a division (paper schedule)")
    g.add_argument("--lr-max-drops", type=int, default=3, help="at most this many divisions")
    g.add_argument("--lr-step", type=float, default=1.0, help="epochs between steps (step "
                   "schedule)")
    g.add_argument("--lr-gamma", type=float, default=0.1, help="factor per step (step) or per "
                   "epoch (exp)")
    g.add_argument("--write-features", metavar="LAYER", help="write LAYER's outputs for the "
                   "--feature-split images into --feature-path as numbered batch files "
                   "of 1,024 images (data_batch_N.npz: data, labels) and a meta.json, then exit without "
                   "training (cuda-convnet2's option; with -f RUN, that run's net)")
    g.add_argument("--feature-path", metavar="DIR", help="folder for --write-features")
    g.add_argument("--feature-split", choices=["test", "train"], default="test",
                   help="which split --write-features reads (centre views, no augmentation)")
    g.add_argument("--check-grads", action="store_true", help="compare the net's gradients with "
                   "finite differences (float64, one small batch) and exit")
    g = p.add_argument_group("saving (default: a new run folder RUNS-DIR/<layers file>-<start "
                             "time>/ with checkpoint.npz, log.txt and history.csv; with -f, the "
                             "run's own folder or file)")
    g.add_argument("--runs-dir", default=runs.default_runs_dir(), metavar="DIR",
                   help=f"where new run folders go (${runs.RUNS_DIR_ENV} sets the default)")
    g.add_argument("--save-path", metavar="FILE", help="the checkpoint file instead (a folder: "
                   "its checkpoint.npz), written atomically at every test, with FILE's stem + "
                   ".log.txt and .history.csv beside it")
    g.add_argument("--no-save", action="store_true", help="save nothing: no checkpoint, log or "
                   "history")
    g = p.add_argument_group("machine")
    g.add_argument("--gpu", metavar="IDS", help="train on GPUs with our CUDA kernels: one index "
                   "for the whole net, or one per logical device of the config's gpu= keys "
                   "(0,1: the paper's two columns on two GPUs; 0,0: both on one); default: the "
                   "CPU")
    g.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                   help="math of the GPU's convolutions and matrix products: fp32 on the CUDA "
                        "cores, or the tensor cores with TF32 or BF16 inputs (FP32 accumulation)")
    g.add_argument("--threads", type=int, help="CPU threads (OpenMP and OpenBLAS)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--collective-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help="under mpiexec (data parallelism over ranks): seconds a rank waits for "
                        "the others in a collective before it stops the run")
    g.add_argument("--no-overlap", action="store_true", help="under mpiexec: sum the gradients "
                   "over the ranks after backward instead of in buckets overlapped with it "
                   "(the same sums; see docs/distributed.md for when each is faster)")
    g.add_argument("--sum-with", choices=("nccl", "mpi"), default=None,
                   help="under mpiexec: sum the gradients with NCCL on the ranks' GPUs or with "
                        "MPI through host memory (default: NCCL where every rank's net is on "
                        "one GPU and NCCL is installed, else MPI)")
    return p


def fail(message: str) -> None:
    print(f"convnet-train: error: {message}", file=sys.stderr)
    sys.exit(2)


def make_data(args, net: Net):
    image_layers = [sp for sp in net.specs if sp.type == "data" and sp["dataIdx"] == 0]
    shape = net.output_shape(image_layers[0].name)
    if len(shape) != 3:
        fail(f"data layer '{image_layers[0].name}' wants {shape}; the data providers make "
             "images (C, H, W)")
    classes = [sp for sp in net.specs if sp.type == "softmax"]
    outputs = net.output_shape(classes[0].name)[0] if classes else None
    synthetic = args.data_provider in ("synthetic", "dummy")
    if args.data_path and not synthetic:
        try:
            data = for_net(args.data_path, shape, args.data_provider, inner_size=args.inner_size,
                           crop_border=args.crop_border, flip=not args.no_flip,
                           color_noise=args.color_noise, train_range=args.train_range,
                           test_range=args.test_range, skip_bad_images=args.skip_bad_images,
                           seed=args.seed, classes=args.classes)
        except (DataError, ValueError) as e:
            fail(f"--data-path: {e}")
        if outputs is not None and data.classes > outputs:
            fail(f"the dataset has {data.classes} classes; the net's softmax "
                 f"'{classes[0].name}' has {outputs} outputs")
        return data
    if args.data_path:
        fail("--data-provider synthetic makes its own data; drop --data-path")
    if args.classes is not None:
        fail("--classes picks classes of real data (--data-path); the synthetic set has "
             "--synthetic-classes")
    if args.data_provider not in (None, "synthetic", "dummy"):
        fail(f"--data-provider {args.data_provider} needs --data-path")
    k = args.synthetic_classes
    if outputs is not None and k > outputs:
        fail(f"--synthetic-classes {k} exceeds the net's {outputs} outputs")
    return SyntheticDataset(shape, classes=k, train_size=args.synthetic_train_size,
                            test_size=args.synthetic_test_size, seed=args.seed)


def describe(data, path: bool = True) -> str:
    """The data in words; path=False leaves out where it is (ranks on other hosts may mount it
    elsewhere)."""
    if isinstance(data, SyntheticDataset):
        return (f"the synthetic set ({data.classes} classes, {data.size('train')} train / "
                f"{data.size('test')} test images of {'x'.join(map(str, data.shape))})")
    p, a = data.provider, data.augmentation
    where = f" at {getattr(p, 'path', '?')}" if path else ""
    what = [f"{p.name} data{where} ({data.classes} classes, "
            f"{data.size('train')} train / {data.size('test')} test images of "
            f"{'x'.join(map(str, p.image_shape))})"]
    if a.crop:
        what.append(f"random {a.crop}x{a.crop} crops" + (" with reflections" if a.flip else ""))
    if a.color_noise:
        what.append(f"PCA colour noise {a.color_noise}")
    return ", ".join(what)


# --check-grads passes when every sampled |numeric - analytic| / max(|numeric|, |analytic|, floor)
# is under the tolerance.
GRAD_CHECK_TOL = 1e-4
GRAD_CHECK_FLOOR = 1e-3


def check_grads(net: Net, data) -> int:
    """Central differences of the objective against the analytic gradients, in float64."""
    source = net.source or {}
    if not (source.get("layers_path") and os.path.exists(source["layers_path"])):
        fail("--check-grads needs the config files on disk")
    net64 = Net.from_cfg(source["layers_path"], source.get("params_path"), net.input_shape,
                         seed=net.seed, dtype="float64")
    x, y = data.batch("train", np.arange(2))

    def show(s):
        print(f"{s.name}[{s.index}]: analytic {s.analytic:+.6e} numeric {s.numeric:+.6e} "
              f"rel. error {s.relative_error(GRAD_CHECK_FLOOR):.1e}")
    check = check_net_gradients(net64, x, y, np.random.default_rng(0), samples=3, report=show)
    # A sample off at STEP is measured again at KINK_STEP: a relu or max-pool kink within STEP of
    # the point drops out there, a wrong gradient does not.
    errors, kinks = [], 0
    for s in check.samples:
        error = s.relative_error(GRAD_CHECK_FLOOR)
        if error >= GRAD_CHECK_TOL:
            s = replace(s, numeric=numeric_derivative(net64, x, y, s.name, s.index, KINK_STEP))
            again = s.relative_error(GRAD_CHECK_FLOOR)
            print(f"{s.name}[{s.index}]: at step {KINK_STEP:g} numeric {s.numeric:+.6e} "
                  f"rel. error {again:.1e}"
                  + (f" (a kink within {STEP:g} of the point)" if again < GRAD_CHECK_TOL else ""))
            kinks += again < GRAD_CHECK_TOL
            error = again
        errors.append(error)
    worst = max(errors, default=0.0)
    ok = worst < GRAD_CHECK_TOL
    print(f"gradient check {'passed' if ok else 'FAILED'}: worst relative error {worst:.1e}"
          + (f" ({kinks} sample(s) measured again past a kink)" if kinks else ""))
    return 0 if ok else 1


def transfer(args, net: Net) -> list:
    """--init-from and --freeze applied to the net; returns the lines that say what was done."""
    if args.init_from and args.load_file:
        fail("--init-from starts a new run from another run's weights and -f continues a run: "
             "give one of them")
    if args.reinit and not args.init_from:
        fail("--reinit LAYERS goes with --init-from RUN (the layers not to load from it)")
    try:
        reinit = select_layers(net, args.reinit, "--reinit") if args.reinit else []
        rows = init_from(net, args.init_from, reinit) if args.init_from else []
        if args.freeze is not None:
            net.freeze(net.frozen, False)
            net.freeze(select_layers(net, args.freeze))
    except TransferError as e:
        fail(str(e))
    if not rows:
        return [f"frozen: {', '.join(net.frozen)}"] if args.freeze else []
    loaded = sum(r.status == "loaded" for r in rows)
    return [f"initialised from {args.init_from}: {loaded} layer(s) loaded"] + \
        ["  " + line for line in transfer_table(rows, net.frozen)]


def write_layer_features(args, net: Net, data) -> int:
    source = args.load_file or args.layers
    if args.write_features not in {s.name for s in net.specs}:
        fail(f"--write-features {args.write_features}: the net has no layer of that name (its "
             f"layers: {', '.join(s.name for s in net.specs)})")
    print(f"writing the features of layer {args.write_features} for the {args.feature_split} "
          f"split of {describe(data)}, from {source} (step {net.step})", flush=True)
    try:
        meta = write_features(net, data, args.write_features, args.feature_path,
                              split=args.feature_split, batch_size=args.mini, run=source,
                              progress=not args.no_progress)
    except FeatureError as e:
        fail(str(e))
    print(f"wrote {meta['images']} x {meta['features']} features (layer shape "
          f"{'x'.join(map(str, meta['layer_shape']))}) in {meta['batches']} batch file(s) to "
          f"{args.feature_path}")
    return 0


def open_run(args, argv, shapes):
    """The net and trainer state to start from: a new net from --layers/--params, the run that
    -f names (run folder or checkpoint file) continued, or a cuda-convnet checkpoint imported.
    `shapes` gives data layers without shape= theirs (from the data). Returns (net, state,
    continued checkpoint or None, lines to print)."""
    load = args.load_file
    if load and runs.is_run_folder(load):
        load = runs.checkpoint_path(load)
    if load and is_cuda_convnet_checkpoint(load):
        # cuda-convnet's own checkpoint: its weights, our config reading of its layers.
        if not args.layers:
            fail(f"-f {load} is a cuda-convnet checkpoint: give the layer definitions it was "
                 "trained with as --layers")
        net = Net.from_cuda_convnet(load, args.layers, args.params, seed=args.seed,
                                    data_shapes=shapes)
        return net, TrainState(), None, [f"imported cuda-convnet checkpoint {load}"]
    if load:
        if os.path.isdir(load):
            fail(f"-f {load}: a folder with neither {runs.CHECKPOINT} (a convnet run) nor "
                 "cuda-convnet checkpoints")
        net = Net.load(load, args.params)
        saved = Trainer.load_options(load)
        if saved is None:   # a Net.save file: its weights start a new run
            return net, TrainState(), None, []
        lines = keep_run_options(args, given_options(build_parser, argv), saved,
                                 net.data_info, build_parser().parse_args([]))
        return net, Trainer.load_state(load), load, lines
    if not args.layers:
        fail("--layers is required (or -f RUN to continue a run)")
    if not args.params and not args.check_grads:
        fail("--params is required to train")
    net = Net.from_cfg(args.layers, args.params, seed=args.seed, strict=args.strict,
                       data_shapes=shapes)
    return net, TrainState(), None, []


def run_facts(net: Net, trainer: Trainer, data) -> dict:
    """What every rank of a data-parallel run must share with rank 0 (the weights are checked
    as well): the config, where the run stands, the options and the data."""
    def digest(text):
        return hashlib.sha1((text or "").encode()).hexdigest()[:12]
    source, st = net.source or {}, trainer.state
    options = {k: v for k, v in asdict(trainer.opt).items()
               if k not in ("save_path", "progress", "workers", "data")}
    return {"the layer definitions (hash)": digest(source.get("layers")),
            "the layer parameters (hash)": digest(source.get("params")),
            "the step": net.step, "the epoch and batch": [st.epoch, st.batch],
            "the frozen layers": net.frozen,
            "the training options": options, "the data": describe(data, path=False),
            "convnet's version": __version__}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_ranks(train_command, argv)


def train_command(argv, world) -> int:
    """The command in this process; world: MPI.COMM_WORLD when an MPI launcher started this
    process as one of several ranks (data parallelism), else None."""
    start = time.time()
    args = build_parser().parse_args(argv)
    if world is not None and (args.check_grads or args.write_features):
        fail("--check-grads and --write-features run in one process: drop mpiexec")
    devices = None
    if args.gpu is not None:
        ids = [i.strip() for i in args.gpu.split(",")]
        if not all(i.isdigit() for i in ids):
            fail(f"--gpu {args.gpu}: give GPU indices, e.g. 0 or 0,1")
        devices = [f"cuda:{int(i)}" for i in ids]
    elif args.precision != "fp32":
        fail(f"--precision {args.precision} applies to the GPU path (--gpu)")
    if args.threads is not None:
        if args.threads < 1:
            fail("--threads must be >= 1")
        set_num_threads(args.threads)
    if args.no_save and args.save_path:
        fail("--no-save and --save-path contradict each other: give one")
    if bool(args.write_features) != bool(args.feature_path):
        fail("--write-features LAYER and --feature-path DIR go together: give both")
    with warnings.catch_warnings():
        warnings.simplefilter("always", ConfigWarning)
        warnings.showwarning = lambda m, *a, **k: print(f"warning: {m}", file=sys.stderr)
        # cuda-convnet's data layers state no shape= (its data provider gave it): read it from
        # the data before building the net.
        shapes = partial(data_layer_shapes, path=args.data_path, provider=args.data_provider,
                         inner_size=args.inner_size, crop_border=args.crop_border,
                         synthetic_shape=args.synthetic_shape)
        try:
            net, state, continued, notes = open_run(args, argv, shapes)
        except DataError as e:   # from reading the data layers' shapes
            fail(f"--data-path: {e}")
        except (ConfigError, checkpoint.CheckpointError, ValueError) as e:
            fail(str(e))
    notes += transfer(args, net)
    for name in ("epochs", "mini", "test_freq"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1")
    if args.test_batches is not None and args.test_batches < 0:
        fail("--test-batches must be >= 0 (0: the whole test set every time)")
    if devices is not None and world is not None:
        # The list names a host's GPUs; each rank takes the next as many as the config's
        # logical devices (one for most nets), by its rank on the host.
        first = local_rank(world) * net.logical_devices
        devices = [devices[(first + k) % len(devices)] for k in range(net.logical_devices)]
    if devices is not None:
        # One GPU takes every logical device; a list maps the config's gpu=0, 1, ... in order
        # (cuda-convnet2's --gpu), and 0,0 puts both columns on one GPU.
        if len(devices) not in (1, net.logical_devices):
            fail(f"--gpu {args.gpu}: the config places layers on {net.logical_devices} logical "
                 f"device(s) with gpu=; give one GPU or {net.logical_devices}")
        try:   # Net.to says when the build has no CUDA kernels or the GPU is not there
            net.to(devices)
            set_precision(args.precision)
        except (RuntimeError, ValueError) as e:
            fail(f"--gpu {args.gpu}: {e}")
    data = make_data(args, net)
    if args.data_path:
        net.remember_data(data.provider, {k: v for k, v in data_options(args).items()
                                          if k in DATA_OPTIONS})
    if args.check_grads:
        return check_grads(net, data)
    if args.write_features:
        return write_layer_features(args, net, data)
    options = TrainOptions(epochs=args.epochs, batch_size=args.mini, test_freq=args.test_freq,
                           test_batches=args.test_batches or None,
                           lr_schedule=args.lr_schedule,
                           lr_patience=args.lr_patience, lr_max_drops=args.lr_max_drops,
                           lr_step=args.lr_step, lr_gamma=args.lr_gamma,
                           progress=not args.no_progress, workers=args.data_workers,
                           multiview=args.multiview_test, data=data_options(args))
    log = runs.RunLog()
    trainer = Trainer(net, data, options, state, log=log)
    if world is not None:
        try:
            trainer.parallel = DataParallel(net, world, timeout=args.collective_timeout,
                                            facts=run_facts(net, trainer, data),
                                            overlap=not args.no_overlap,
                                            nccl=None if args.sum_with is None else
                                            args.sum_with == "nccl")
        except DistributedError as e:
            fail(str(e))
        notes += [f"data parallel over {trainer.parallel.size} ranks "
                  f"({-(-args.mini // trainer.parallel.size)} images of each batch of "
                  f"{args.mini} per rank, gradients summed with {trainer.parallel.summed_by}):"]
        notes += ["  " + w for w in trainer.parallel.where()]
    done = state.epoch + state.batch / trainer.batches_per_epoch
    if args.test_only:
        for line in notes:
            print(line)
        print(f"testing {args.load_file or args.layers} at epoch {done:.2f} step {net.step} on "
              f"{describe(data)}")
        for layer, metrics in trainer.evaluate().items():
            print(f"{layer}: " + ", ".join(f"{k} {v:.6f}" for k, v in metrics.items()))
        return 0
    if state.epoch >= args.epochs:
        print(f"the run has done {done:g} epoch(s) of the {args.epochs} asked for: nothing to "
              f"train (-f {args.load_file} --epochs N with N > {done:g} continues it)")
        return 0
    leader = world is None or world.Get_rank() == 0   # the rank that writes the run
    target = save_target(args, continued, args.layers or (net.source or {}).get("layers_path"),
                         start) if leader else None
    trainer.opt.save_path = target
    if target is not None:
        log.open(runs.companion(target, runs.LOG))
    try:
        return train(args, trainer, log, target, [first_line(target, continued)] + notes)
    finally:
        log.close()


def train(args, trainer: Trainer, log: runs.RunLog, target, header) -> int:
    net, data, state = trainer.net, trainer.data, trainer.state
    for line in header:
        log(line)
    trained = (f"{net.trained_parameter_count:,} of {net.parameter_count:,} parameters "
               f"({', '.join(net.frozen)} frozen)" if net.frozen else
               f"{net.parameter_count:,} parameters")
    log(f"training {trained} for {args.epochs} epoch(s) of "
        f"{trainer.batches_per_epoch} batches of {args.mini} on {describe(data)}")
    try:
        trainer.run()
    except (TrainingDiverged, DistributedError) as e:
        log.error(f"convnet-train: stopped: {e}")
        return 1
    except DataError as e:
        saved = (f"; the last checkpoint is in {runs.where(target)}" if target and state.history
                 else "")
        log.error(f"convnet-train: stopped by bad data: {e}{saved} (--skip-bad-images skips "
                  "unreadable images)")
        return 1
    except KeyboardInterrupt:
        log.error("\ninterrupted" + (f"; continue with -f {runs.where(target)}"
                                      if target and state.history else ""))
        return 130
    if state.history:
        last = state.history[-1]
        log("final: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()
                                  if k.startswith("test/")))
    log(last_line(target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
