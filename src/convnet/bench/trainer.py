"""python -m convnet.bench --train --trainer: does convnet-train's loop keep pace with the step?
For each shipped net, the trainer (the background loader, a test on two batches and a checkpoint
every --test-freq steps, as convnet-train does by default) runs on the built-in synthetic set, and
net.train_step alone runs on one of its batches; the two alternate, several rounds, and the ratio
of their images/s is printed. Each trainer run saves twice over the checkpoint of the run before:
the first save writes a new file and keeps the old one as its spare, the second writes over the
spare, as a long run's later saves all do; so the figure is, if anything, low."""

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ..data.synthetic import SyntheticDataset
from ..trainer import Trainer, TrainOptions

TEST_FREQ = 20      # convnet-train's default --test-freq
TESTS_PER_RUN = 2   # so that one run in two of its saves writes over the spare, as a long run does


def run(nets, rounds: int, test_freq: int = TEST_FREQ) -> None:
    """nets: (stem, batch, net, image shape, classes) of bench --train; prints the table."""
    rates = {stem: ([], []) for stem, *_ in nets}
    with tempfile.TemporaryDirectory(prefix="convnet-bench-") as folder:
        for _ in range(rounds):
            for stem, batch, net, shape, classes in nets:
                step_rate, trainer_rate = rates[stem]
                data = SyntheticDataset(shape, classes=min(classes, 10),
                                        train_size=batch * test_freq * TESTS_PER_RUN,
                                        test_size=2 * batch, seed=0)
                x, labels = data.batch("train", np.arange(batch))
                start = time.perf_counter()
                for _ in range(test_freq * TESTS_PER_RUN):
                    net.train_step(x, labels)
                step_rate.append(test_freq * TESTS_PER_RUN * batch /
                                 (time.perf_counter() - start))
                trainer = Trainer(net, data, TrainOptions(
                    epochs=1, batch_size=batch, test_freq=test_freq,
                    save_path=str(Path(folder) / f"{stem}.npz"), progress=False),
                    log=lambda line: None)
                start = time.perf_counter()
                trainer.run()
                trainer_rate.append(data.size("train") / (time.perf_counter() - start))
    print(f"\nconvnet-train's loop against the step alone: the synthetic set, a test of 2 batches "
          f"and a checkpoint every {test_freq} steps; median of {rounds} round(s) of "
          f"{test_freq * TESTS_PER_RUN} steps, alternating")
    print(f"{'net':15} {'batch':>5} {'step img/s':>11} {'trainer img/s':>14} {'trainer/step':>13}")
    for stem, batch, *_ in nets:
        step = statistics.median(rates[stem][0])
        trainer = statistics.median(rates[stem][1])
        print(f"{stem:15} {batch:5d} {step:11.1f} {trainer:14.1f} {trainer / step:13.2f}")
