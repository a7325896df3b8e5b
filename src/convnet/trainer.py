"""The training loop: epochs of shuffled mini-batches, the learning-rate schedule, evaluation on
the test set every --test-freq batches, a progress line with images/s and ETA, atomic checkpoints
and exact resume. Everything that decides what a step does (the batch order, the dropout masks,
the learning rate) is a function of the seed and the counters saved in the checkpoint, so a run
stopped and resumed gives the same weights as one that never stopped."""

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

import numpy as np

from . import checkpoint, runs
from .files import remove_spare
from .data.loader import Loader
from .net import Net


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainState:
    epoch: int = 0                 # the epoch in progress
    batch: int = 0                 # batches of it already done
    best_test_error: float = math.inf
    tests_without_improvement: int = 0
    lr_drops: int = 0
    history: List[dict] = field(default_factory=list)


@dataclass
class TrainOptions:
    epochs: int = 1
    batch_size: int = 128
    test_freq: int = 50            # batches between evaluations (and checkpoints)
    test_batches: Optional[int] = 2      # test batches per periodic evaluation, taken in turn
                                         # through the test set (None: all of it each time);
                                         # the last evaluation of a run always sees all of it
    save_path: Optional[str] = None
    lr_schedule: str = "config"    # "config": the params file's schedules; "paper": also /10 on
    lr_patience: int = 3           #   a plateau of the test error, at most lr_max_drops times;
    lr_max_drops: int = 3          #   "step": times lr_gamma every lr_step epochs; "exp": times
    lr_step: float = 1.0           #   lr_gamma per epoch, continuously
    lr_gamma: float = 0.1
    progress: bool = True
    workers: int = 2               # background loader threads (0: load in the training thread)
    multiview: bool = False        # test on the paper's ten views, averaging the softmax
    data: Optional[dict] = None    # how the data was made (convnet-train's data options), saved
                                   # so that a resumed run trains on the same data


class Trainer:
    """parallel: a convnet.distributed.DataParallel when this process is one of several ranks
    training together: every rank runs the same loop over the same global batches (batch_size
    images each), loads and trains on its shard of each, and tests on its part of the test
    set; the caller has only rank 0 log and save."""

    def __init__(self, net: Net, data, options: TrainOptions, state: Optional[TrainState] = None,
                 log: Callable[[str], None] = print, parallel=None):
        self.net, self.data, self.opt, self.parallel = net, data, options, parallel
        self.state = state or TrainState()
        if options.batch_size < 1:
            raise ValueError("the batch size (--mini) must be >= 1")
        if options.lr_schedule not in ("config", "paper", "step", "exp"):
            raise ValueError(f"unknown learning-rate schedule {options.lr_schedule!r}: expected "
                             "config, paper, step or exp")
        if options.lr_schedule in ("step", "exp") and not (options.lr_gamma > 0 and
                                                          options.lr_step > 0):
            raise ValueError("the step and exp schedules need lr_gamma > 0 and lr_step > 0")
        self.log = log
        self._last_line = time.time()
        self._loader = None
        self.data_wait = 0.0   # seconds the training loop waited for the loader
        n = data.size("train")
        self.batches_per_epoch = max(1, math.ceil(n / options.batch_size))
        if self.state.batch >= self.batches_per_epoch:  # saved at the end of an epoch
            self.state.epoch, self.state.batch = self.state.epoch + 1, 0

    # ---- schedule ------------------------------------------------------------------------------

    def _progress(self) -> float:
        # cuda-convnet2: (batches done - 1) / (epochs * batches per epoch)
        total = self.opt.epochs * self.batches_per_epoch
        done = self.state.epoch * self.batches_per_epoch + self.state.batch
        return min(max(done / total, 0.0), 1.0)

    def _fixed_lr_scale(self) -> float:
        """The step and exponential schedules: a function of the epochs done (fractional), so a
        resumed run continues them exactly."""
        epochs = self.state.epoch + self.state.batch / self.batches_per_epoch
        if self.opt.lr_schedule == "step":
            return self.opt.lr_gamma ** math.floor(epochs / self.opt.lr_step + 1e-9)
        return self.opt.lr_gamma ** epochs

    def _order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.net.seed, 1, epoch])
        provider = getattr(self.data, "provider", None)
        if provider is not None and not getattr(provider, "in_memory", True):
            # Batch files read lazily (ImageNet-sized data): shuffle the files, then the images
            # inside each, so that an epoch reads every file once, as cuda-convnet did.
            bounds = provider.batch_bounds("train")
            return np.concatenate([rng.permutation(np.arange(a, b))
                                   for k in rng.permutation(len(bounds))
                                   for a, b in [bounds[k]]])
        return rng.permutation(self.data.size("train"))

    # ---- evaluation ----------------------------------------------------------------------------

    def evaluate(self, multiview: Optional[bool] = None, *, whole: bool = True) -> dict:
        """Each cost layer's mean loss and error rates over the test set. whole=False (the tests
        during training): the next test_batches batches of it instead, in turn, as cuda-convnet
        tested on one test batch at a time, so that testing costs a small share of training;
        which ones is a function of how many tests the run has done, so a resumed run goes on
        where it stopped. multiview: the paper's ten views per image, softmax averaged."""
        multiview = self.opt.multiview if multiview is None else multiview
        n = self.data.size("test")
        indices = np.arange(n)
        if not whole and self.opt.test_batches is not None:
            count = min(n, self.opt.test_batches * self.opt.batch_size)
            start = len(self.state.history) * count % max(n, 1)
            indices = (start + np.arange(count)) % n
        if self.parallel is not None:   # this rank's part; the sums are added up below
            lo, hi = self.parallel.bounds(len(indices))
            indices = indices[lo:hi]
        if multiview:
            return self._evaluate_views(indices)
        totals, count = {}, 0
        with Loader(self.data, "test", indices, self.opt.batch_size, key=None,
                    workers=self.opt.workers, reuse_buffers=True,
                    pinned=self.net.device != "cpu") as loader:
            for _, x, y in loader:
                for layer, metrics in self.net.evaluate(x, y).items():
                    for k, v in metrics.items():
                        totals[(layer, k)] = totals.get((layer, k), 0.0) + v * len(y)
                count += len(y)
        if self.parallel is not None:
            totals, count = self.parallel.sum_totals(totals, count)
        out = {}
        for (layer, k), v in totals.items():
            out.setdefault(layer, {})[k] = v / max(count, 1)
        return out

    def _evaluate_views(self, indices) -> dict:
        if not hasattr(self.data, "views"):
            raise ValueError("multiview testing needs a dataset with crops (a data layer smaller "
                             "than the images, or --inner-size)")
        cost = next((s for s in self.net.specs if s.type == "cost.logreg"), None)
        if cost is None:
            raise ValueError("multiview testing needs a cost.logreg layer")
        topk = int(cost.get("topk", 1)) if cost.params else 1
        loss = top1 = topkerr = 0.0
        n = len(indices)
        for start in range(0, n, self.opt.batch_size):
            views, y = self.data.views("test", indices[start:start + self.opt.batch_size])
            probs = np.mean([self.net.predict(v) for v in views], axis=0, dtype=np.float64)
            picked = probs[np.arange(len(y)), y]
            loss += float(-np.log(np.maximum(picked, 1e-300)).sum())
            rank = (probs > picked[:, None]).sum(axis=1)   # classes scoring above the label
            top1 += float((rank >= 1).sum())
            topkerr += float((rank >= topk).sum())
        if self.parallel is not None:
            loss, top1, topkerr, n = self.parallel.allreduce(
                np.array([loss, top1, topkerr, n], np.float64), "the ten-view test")
        metrics = {"loss": loss / max(n, 1), "top1_error": top1 / max(n, 1)}
        metrics[f"top{topk}_error"] = topkerr / max(n, 1)
        return {cost.name: metrics}

    # ---- the loop ------------------------------------------------------------------------------

    def run(self) -> TrainState:
        st, opt = self.state, self.opt
        total_batches = opt.epochs * self.batches_per_epoch
        start_time, start_done = time.time(), st.epoch * self.batches_per_epoch + st.batch
        if start_done:
            # In the units of the test lines ("epoch 1.50 step 15"): epochs done, not the one
            # in progress, so the counters read on from where the run stopped.
            self.log(f"resuming at epoch {start_done / self.batches_per_epoch:.2f} step "
                     f"{self.net.step} ({start_done} of {total_batches} batches done)")
        try:
            self._epochs(start_time, start_done, total_batches)
        finally:
            if opt.save_path:   # the spare the checkpoints of this run were written into
                remove_spare(opt.save_path)
        if opt.progress and sys.stdout.isatty():
            print(file=sys.stdout)
        return st

    def _epochs(self, start_time, start_done, total_batches):
        """The training loop proper: epochs of batches, tests and checkpoints."""
        st, opt = self.state, self.opt
        recent = []
        while st.epoch < opt.epochs:
            epoch = st.epoch
            # Augmenting datasets take a key, so a batch's crops, flips and colour noise are a
            # function of (seed, epoch, batch) and a resumed run draws the same ones.
            key = (lambda b: (epoch, b)) if hasattr(self.data, "views") else None
            shard = None if self.parallel is None else (self.parallel.rank, self.parallel.size)
            loader = Loader(self.data, "train", self._order(epoch), opt.batch_size,
                            start_batch=st.batch, key=key, workers=opt.workers,
                            reuse_buffers=True, pinned=self.net.device != "cpu", shard=shard)
            self._loader = loader
            try:
                for b, x, y in loader:
                    if opt.lr_schedule in ("step", "exp"):
                        self.net.lr_scale = self._fixed_lr_scale()
                    self.net.set_progress(self._progress())
                    if self.parallel is None:
                        metrics = self.net.train_step(x, y)
                    else:   # the metrics of the global batch
                        lo, _, n = loader.part(b)
                        metrics = self.parallel.train_shard(x, y, lo, n)
                    st.batch += 1
                    recent.append(metrics)
                    loss = sum(m["loss"] for m in metrics.values())
                    if not math.isfinite(loss):
                        raise TrainingDiverged(
                            f"the training loss became {loss} at step {self.net.step} (epoch "
                            f"{st.epoch + 1}, batch {st.batch}); the last good checkpoint is "
                            f"{opt.save_path or 'not saved (--no-save)'}")
                    done = st.epoch * self.batches_per_epoch + st.batch
                    self._show_progress(done, total_batches, start_done, start_time, recent)
                    if done % opt.test_freq == 0 or done == total_batches:
                        self._test_and_save(recent, done, total_batches)
                        recent = []
            finally:
                loader.close()
                self.data_wait += loader.wait_time
                self._loader = None
            st.epoch, st.batch = st.epoch + 1, 0

    def _show_progress(self, done, total, start_done, start_time, recent):
        if not self.opt.progress:
            return
        elapsed = time.time() - start_time
        rate = (done - start_done) * self.opt.batch_size / max(elapsed, 1e-9)
        eta = (total - done) * self.opt.batch_size / max(rate, 1e-9)
        loss = np.mean([sum(m["loss"] for m in r.values()) for r in recent])
        width = 30
        filled = int(width * done / total)
        waited = self.data_wait + (self._loader.wait_time if self._loader else 0.0)
        line = (f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} batches  "
                f"loss {loss:.4f}  {rate:.1f} img/s  ETA {eta:.0f}s  "
                f"data wait {100 * waited / max(elapsed, 1e-9):.0f}%")
        if sys.stdout.isatty():
            print(line, end="", flush=True)
        elif time.time() - self._last_line >= 15:  # logs and pipes: a plain line now and then
            print(line[1:], flush=True)
            self._last_line = time.time()

    def _test_and_save(self, recent, done, total):
        st, opt = self.state, self.opt
        test = self.evaluate(whole=done == total)
        entry = {"step": self.net.step, "epoch": st.epoch + st.batch / self.batches_per_epoch,
                 "lr_scale": self.net.lr_scale, "time": time.time()}
        for layer in recent[0]:
            for k in recent[0][layer]:
                entry[f"train/{layer}/{k}"] = float(np.mean([r[layer][k] for r in recent]))
        for layer, metrics in test.items():
            for k, v in metrics.items():
                entry[f"test/{layer}/{k}"] = v
        st.history.append(entry)
        parts = [f"epoch {entry['epoch']:.2f}", f"step {self.net.step}"]
        for layer, metrics in test.items():
            parts.append(f"{layer}: train loss {entry[f'train/{layer}/loss']:.4f}, test " +
                         ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if sys.stdout.isatty() and opt.progress:
            print("\r" + " " * 100 + "\r", end="")
        self.log("  ".join(parts))
        self._track_best(test)
        if opt.save_path:
            self.save(opt.save_path)

    def _track_best(self, test):
        """The best top-1 test error so far (of the first cost layer that has one), under every
        schedule; the paper schedule divides the rates when it stops improving."""
        st, opt = self.state, self.opt
        errors = [m["top1_error"] for m in test.values() if "top1_error" in m]
        if not errors:
            return
        if errors[0] < st.best_test_error:
            st.best_test_error, st.tests_without_improvement = errors[0], 0
            return
        st.tests_without_improvement += 1
        if opt.lr_schedule != "paper":
            return
        if st.tests_without_improvement >= opt.lr_patience and st.lr_drops < opt.lr_max_drops:
            self.net.lr_scale /= 10
            st.lr_drops += 1
            st.tests_without_improvement = 0
            self.log(f"test error stopped improving: learning rates divided by 10 (drop "
                     f"{st.lr_drops} of at most {opt.lr_max_drops})")

    # ---- checkpoints ---------------------------------------------------------------------------

    def save(self, path) -> None:
        """The checkpoint, then the history as CSV beside it (runs.companion): a run folder's
        checkpoint.npz and history.csv, or FILE and FILE's stem + .history.csv."""
        provider = getattr(self.data, "provider", None)
        if provider is not None and self.net.data_info is None:
            self.net.remember_data(provider)
        meta = {"net": self.net.checkpoint_meta(), "trainer": asdict(self.state),
                "options": asdict(self.opt)}
        checkpoint.save(path, meta, self.net.state_arrays(views=True), again=True)
        runs.write_history(runs.companion(path, runs.HISTORY), self.state.history)

    @staticmethod
    def load_state(path) -> TrainState:
        meta = checkpoint.read_meta(path)
        if "trainer" not in meta:
            return TrainState()
        return TrainState(**meta["trainer"])

    @staticmethod
    def load_options(path) -> Optional[dict]:
        """The options a training checkpoint was saved with (None for a Net.save file)."""
        return checkpoint.read_meta(path).get("options")
