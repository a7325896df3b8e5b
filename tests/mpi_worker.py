"""Run by tests/test_distributed.py under mpiexec (OUT STEPS KIND [overlap|after]): trains
test_distributed's net KIND with convnet.distributed.DataParallel for STEPS steps on the global
batches the test gives, the gradients summed in small buckets overlapped with backward or after
it, and each rank writes its final weights to OUT/rank<r>.npz."""

import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from convnet.distributed import DataParallel  # noqa: E402
from test_distributed import build, global_batches  # noqa: E402


def main(out, steps, kind, overlap="overlap"):
    net = build(kind)
    # Buckets of 512 bytes: several per step, so that their order and overlap matter.
    dp = DataParallel(net, overlap=overlap == "overlap", bucket_bytes=512)
    metrics = [dp.train_step(x, y) for x, y in global_batches(int(steps), kind)]
    np.savez(pathlib.Path(out) / f"rank{dp.rank}.npz", loss=[m["logprob"]["loss"] for m in metrics],
             buckets=len(dp.gradients.buckets), overlap=dp.gradients.overlap,
             **{name: net.params[name] for name in net.params})
    dp.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
