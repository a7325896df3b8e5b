"""Run by tests/test_distributed.py under mpiexec (OUT STEPS KIND): trains test_distributed's net
KIND with convnet.distributed.DataParallel for STEPS steps on the global batches the test gives,
and each rank writes its final weights to OUT/rank<r>.npz."""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from convnet.distributed import DataParallel  # noqa: E402
from test_distributed import build, global_batches  # noqa: E402


def main(out, steps, kind):
    net = build(kind)
    dp = DataParallel(net)
    metrics = [dp.train_step(x, y) for x, y in global_batches(int(steps), kind)]
    np.savez(pathlib.Path(out) / f"rank{dp.rank}.npz", loss=[m["logprob"]["loss"] for m in metrics],
             **{name: net.params[name] for name in net.params})


if __name__ == "__main__":
    main(*sys.argv[1:])
