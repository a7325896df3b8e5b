"""The background loader: the same batches in the same order for any worker count, exact resume
from any batch, worker errors raised in the consumer (never a hang), prompt shutdown when the
consumer stops early, bounded prefetch. Anything that could hang runs under a join timeout, so a
deadlock fails the test instead of blocking the suite."""

import threading
import time

import numpy as np
import pytest

from convnet.bench.data import bench_loader, make_demo_jpegs
from convnet.data.augment import Augmentation, AugmentedDataset, ColorPCA
from convnet.data.errors import DataError
from convnet.data.loader import Loader
from convnet.data.provider import Provider
from convnet.data.synthetic import SyntheticDataset

# Seconds after which a loader that has not delivered (or shut down) counts as hung: far above
# what any of these tiny batches take, even on a loaded 2-core machine.
HANG_TIMEOUT = 10.0
# close() may wait for the batches in progress (one per worker); these take SLOW_BATCH seconds.
SLOW_BATCH = 0.05
PROMPT_CLOSE = 1.0


class ArrayProvider(Provider):
    """Random images in memory. fail_on: an index whose loading raises a DataError; delay:
    seconds each images() call sleeps (as a slow disk would). Thread-safe: counts under a lock."""

    name = "arrays"

    def __init__(self, n=50, shape=(3, 10, 10), fail_on=None, delay=0.0):
        rng = np.random.default_rng(0)
        self.classes, self.label_names, self.image_shape = 3, ["a", "b", "c"], shape
        self.x = rng.normal(0, 20, (n,) + shape).astype(np.float32)
        self.y = rng.integers(0, 3, n)
        self.fail_on, self.delay = fail_on, delay
        self.calls, self.threads, self._lock = 0, set(), threading.Lock()

    def size(self, split):
        return len(self.y)

    def images(self, split, indices):
        with self._lock:
            self.calls += 1
            self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        indices = np.asarray(indices)
        if self.fail_on is not None and self.fail_on in indices:
            raise DataError(f"image{self.fail_on}.jpg", "truncated JPEG")
        return self.x[indices].copy(), self.y[indices].astype(np.int64)

    @property
    def mean(self):
        return np.zeros(self.image_shape, np.float32)


def augmented(provider, seed=0):
    pca = ColorPCA.from_provider(provider)
    return AugmentedDataset(provider, Augmentation(crop=8, color_noise=0.1, pca=pca), seed)


def within(timeout, fn):
    """fn() in a daemon thread; its result, its exception re-raised, or a failure after
    `timeout` seconds (a hang)."""
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as e:   # noqa: BLE001 -- handed to the test thread
            box["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"still running after {timeout} s: the loader hangs")
    if "error" in box:
        raise box["error"]
    return box["result"]


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("convnet-loader")]


def collect(loader):
    with loader:
        return [(b, x, y) for b, x, y in loader]


def test_same_batches_in_the_same_order_for_any_worker_count():
    provider = ArrayProvider(n=50)
    data = augmented(provider)
    order = np.random.default_rng(1).permutation(50)
    runs = {}
    for workers, prefetch in ((0, 1), (1, 1), (3, 2), (3, 8)):
        runs[workers, prefetch] = within(HANG_TIMEOUT, lambda: collect(
            Loader(data, "train", order, 8, key=lambda b: (4, b), workers=workers,
                   prefetch=prefetch)))
    reference = runs[0, 1]
    assert [b for b, _, _ in reference] == list(range(7))
    assert [len(y) for _, _, y in reference] == [8] * 6 + [2]     # the last batch is partial
    for b, x, y in reference:   # each batch is the dataset's batch for its slice and key
        ex, ey = data.batch("train", order[8 * b:8 * b + 8], key=(4, b))
        np.testing.assert_array_equal(x, ex)
        np.testing.assert_array_equal(y, ey)
    for run in runs.values():
        assert len(run) == len(reference)
        for (b0, x0, y0), (b1, x1, y1) in zip(reference, run):
            assert b0 == b1
            np.testing.assert_array_equal(x0, x1)
            np.testing.assert_array_equal(y0, y1)
    # With workers the batches were computed off the consumer's thread.
    assert any(name.startswith("convnet-loader") for name in provider.threads)


def test_starting_at_batch_k_equals_the_tail_of_a_full_run():
    data = augmented(ArrayProvider(n=45))
    order = np.random.default_rng(2).permutation(45)
    full = within(HANG_TIMEOUT, lambda: collect(Loader(data, "train", order, 10, workers=2)))
    for k in (0, 1, 3, 4, 5):
        tail = within(HANG_TIMEOUT, lambda: collect(
            Loader(data, "train", order, 10, start_batch=k, workers=2)))
        assert [b for b, _, _ in tail] == list(range(k, 5))
        for (b0, x0, y0), (b1, x1, y1) in zip(full[k:], tail):
            assert b0 == b1
            np.testing.assert_array_equal(x0, x1)
            np.testing.assert_array_equal(y0, y1)
    with pytest.raises(ValueError, match="start_batch 6 is outside the 5 batches"):
        Loader(data, "train", order, 10, start_batch=6)


def test_a_different_key_gives_different_augmentation():
    data = augmented(ArrayProvider(n=20))
    order = np.arange(20)
    a = within(HANG_TIMEOUT, lambda: collect(Loader(data, "train", order, 5,
                                                    key=lambda b: (0, b))))
    b = within(HANG_TIMEOUT, lambda: collect(Loader(data, "train", order, 5,
                                                    key=lambda b: (1, b))))
    assert all(not np.array_equal(x0, x1) for (_, x0, _), (_, x1, _) in zip(a, b))


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_a_worker_error_is_raised_in_the_consumer_at_its_batch(workers):
    provider = ArrayProvider(n=40, fail_on=17)   # position 17 of arange(40): batch 3 of 8
    data = AugmentedDataset(provider, Augmentation(crop=8))
    seen = []

    def consume():
        with Loader(data, "train", np.arange(40), 5, workers=workers, prefetch=4) as loader:
            for b, _, _ in loader:
                seen.append(b)

    with pytest.raises(DataError, match="image17.jpg: truncated JPEG") as info:
        within(HANG_TIMEOUT, consume)
    assert seen == [0, 1, 2]
    assert any("batch 3 of the 'train' split" in note for note in info.value.__notes__)
    deadline = time.time() + PROMPT_CLOSE
    while loader_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert not loader_threads()


def test_an_error_in_the_key_function_is_raised_too():
    data = augmented(ArrayProvider(n=20))

    def key(b):
        if b == 2:
            raise RuntimeError("no key for batch 2")
        return (b,)

    with pytest.raises(RuntimeError, match="no key for batch 2"):
        within(HANG_TIMEOUT, lambda: collect(Loader(data, "train", np.arange(20), 4, key=key)))


def test_close_returns_promptly_when_the_consumer_stops_early():
    provider = ArrayProvider(n=400, delay=SLOW_BATCH)
    data = AugmentedDataset(provider, Augmentation(crop=8))
    loader = Loader(data, "train", np.arange(400), 4, workers=3, prefetch=6)   # 100 batches

    def stop_early():
        got = [next(loader)[0], next(loader)[0]]
        start = time.perf_counter()
        loader.close()
        return got, time.perf_counter() - start

    got, seconds = within(HANG_TIMEOUT, stop_early)
    assert got == [0, 1]
    assert seconds < PROMPT_CLOSE
    assert not loader_threads()
    calls = provider.calls
    assert calls <= 2 + 6              # those delivered + the prefetch window
    time.sleep(3 * SLOW_BATCH)
    assert provider.calls == calls     # nothing runs after close()
    with pytest.raises(StopIteration):
        next(loader)
    assert len(loader) == 0
    loader.close()                     # idempotent


def test_prefetch_bounds_the_work_done_ahead_of_the_consumer():
    provider = ArrayProvider(n=200)
    data = AugmentedDataset(provider, Augmentation())

    def calls_reach(n):
        deadline = time.time() + HANG_TIMEOUT
        while provider.calls < n and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)                # time enough to overshoot, were the window not enforced
        return provider.calls

    with Loader(data, "train", np.arange(200), 2, workers=2, prefetch=3) as loader:
        assert calls_reach(3) == 3
        next(loader)
        assert calls_reach(4) == 4
        assert len(loader) == 99


def test_wait_time_measures_the_consumer_waiting_for_data():
    provider = ArrayProvider(n=40, delay=SLOW_BATCH)
    data = AugmentedDataset(provider, Augmentation())
    start = time.perf_counter()
    with Loader(data, "train", np.arange(40), 10, workers=0) as loader:
        for _ in loader:
            pass
    elapsed = time.perf_counter() - start
    # Synchronous: the consumer waits for every batch it computes itself.
    assert 4 * SLOW_BATCH <= loader.wait_time <= elapsed
    # A slow consumer with a worker ahead of it hardly waits at all after the first batch.
    with Loader(data, "train", np.arange(40), 10, workers=1, prefetch=4) as loader:
        for _ in loader:
            time.sleep(2 * SLOW_BATCH)
    assert loader.wait_time < 4 * SLOW_BATCH


def test_datasets_without_a_key_and_bad_arguments():
    synthetic = SyntheticDataset(shape=(3, 8, 8), train_size=30)
    out = within(HANG_TIMEOUT, lambda: collect(
        Loader(synthetic, "train", np.arange(30), 8, key=None, workers=2)))
    np.testing.assert_array_equal(out[3][1], synthetic.batch("train", np.arange(24, 30))[0])
    for kwargs, message in (({"batch_size": 0}, "batch_size"), ({"workers": -1}, "workers"),
                            ({"prefetch": 0}, "prefetch"), ({"start_batch": -1}, "start_batch")):
        args = {"batch_size": 4, **kwargs}
        with pytest.raises(ValueError, match=message):
            Loader(synthetic, "train", np.arange(30), **args)
    with pytest.raises(ValueError, match="1-D array of indices"):
        Loader(synthetic, "train", np.zeros((2, 3), np.int64), 4)
    with pytest.raises(ValueError, match="1-D array of indices"):
        Loader(synthetic, "train", np.linspace(0, 1, 5), 4)
    assert list(Loader(synthetic, "train", np.arange(0), 4, workers=0)) == []


def test_bench_loader_reports_images_per_second_per_worker_count():
    result = bench_loader(ArrayProvider(n=32, shape=(3, 12, 12)), crop=10, workers=(1, 2),
                          batches=3, batch_size=8, pca_samples=8)
    assert [r["workers"] for r in result["rows"]] == [1, 2]
    for r in result["rows"]:
        assert r["images"] == 24 and r["images_per_s"] > 0
        assert r["images_per_s_per_worker"] == pytest.approx(r["images_per_s"] / r["workers"])
    assert result["meta"]["output_shape"] == [3, 10, 10]
    with pytest.raises(ValueError, match="worker counts"):
        bench_loader(ArrayProvider(), workers=(0,))


def test_demo_jpeg_folder(tmp_path):
    from PIL import Image

    root = make_demo_jpegs(tmp_path, train_per_class=2, val_per_class=1, classes=3,
                           size=(40, 30))
    train = sorted((tmp_path / "train").glob("*/*.jpg"))
    assert len(train) == 6 and len(list((tmp_path / "val").glob("*/*.jpg"))) == 3
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["class0", "class1",
                                                                       "class2"]
    with Image.open(train[0]) as image:
        assert image.size == (40, 30) and image.mode == "RGB"
    assert root == str(tmp_path)


def test_reused_buffers_give_the_same_batches_and_stay_valid_until_two_batches_later():
    from convnet.data import ArrayDataset, Augmentation, AugmentedDataset
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (50, 3, 12, 12)).astype(np.uint8)
    y = rng.integers(0, 4, 50)
    data = AugmentedDataset(ArrayDataset(train=(x, y), test=(x[:8], y[:8])),
                            Augmentation(crop=8, color_noise=0.0), seed=2)
    order = rng.permutation(50)
    fresh = [(b, xb.copy(), yb) for b, xb, yb in
             Loader(data, "train", order, 7, key=lambda b: (0, b), workers=2)]
    seen, buffers = [], set()
    with Loader(data, "train", order, 7, key=lambda b: (0, b), workers=2, prefetch=2,
                reuse_buffers=True) as loader:
        previous = None
        for b, xb, yb in loader:
            buffers.add(xb.__array_interface__["data"][0])
            if previous is not None:   # the last batch is still intact one batch later
                np.testing.assert_array_equal(previous[1], fresh[previous[0]][1])
            seen.append((b, xb.copy(), yb))
            previous = (b, xb)
    assert len(buffers) <= 4 < len(seen)      # prefetch + 2 slots, reused
    for (b1, x1, y1), (b2, x2, y2) in zip(fresh, seen):
        assert b1 == b2
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
