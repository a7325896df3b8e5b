"""convnet-train under an MPI launcher (mpiexec -n N convnet-train ...): every rank runs the same
command; rank 0 alone prints, logs and writes the run, the others keep their output unless they
stop alone. A rank that stops alone (a bad file on its host, an exception) makes every rank stop
at once with its message, instead of leaving the others waiting in a collective; when all stop
together (a config error, a diverged loss, Ctrl-C) they exit with rank 0's message only."""

import contextlib
import io
import os
import sys
import time
import traceback
from typing import Callable, List, Optional

from ..distributed import DistributedError, launched_world, mpi

# Seconds a stopping rank waits for the others to stop too before it stops them.
STOP_TOGETHER_WAIT = 5.0
# Seconds it gives the launcher to forward its last lines before MPI_Abort.
ABORT_PAUSE = 1.0


def run_ranks(main: Callable[[List[str], Optional[object]], int], argv: List[str]) -> int:
    """main(argv, world) once in this process: world is None for a plain run, MPI.COMM_WORLD
    under an MPI launcher."""
    rank, size = launched_world()
    if size == 1:
        return main(argv, None)
    try:
        MPI = mpi()
    except DistributedError as e:
        print(f"convnet-train: error: started as rank {rank} of {size} by an MPI launcher, but "
              f"{e}", file=sys.stderr)
        return 2
    world = MPI.COMM_WORLD
    if world.Get_size() != size:
        print(f"convnet-train: error: the launcher started {size} ranks but mpi4py's MPI "
              f"library sees {world.Get_size()}: run the mpiexec of the MPI mpi4py uses (pip's "
              f"MPICH: {os.path.join(sys.prefix, 'bin', 'mpiexec')})", file=sys.stderr)
        return 2
    stops = world.Dup()   # its own communicator: the stop handshake never meets a training one
    said = io.StringIO()  # what a rank other than 0 would have printed on stderr
    code = 1
    try:
        with contextlib.ExitStack() as quiet:
            if rank:
                quiet.enter_context(contextlib.redirect_stdout(open(os.devnull, "w")))
                quiet.enter_context(contextlib.redirect_stderr(said))
            code = main(argv, world)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) or e.code is None else 1
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=said if rank else sys.stderr)
    except BaseException:   # noqa: B036 -- a rank must never die without stopping the others
        traceback.print_exc(file=said if rank else sys.stderr)
    if not code:
        return 0
    if stop_together(stops, MPI):
        return code   # every rank stops here, for the same reason: rank 0 has said it
    for line in said.getvalue().splitlines():
        print(f"rank {rank}: {line}", file=sys.stderr)
    print(f"convnet-train: rank {rank} of {size} stopped (exit code {code}) while the others "
          "went on: stopping them", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The launcher forwards our output through its proxy, which MPI_Abort tears down at once:
    # without a pause the lines above are sometimes lost (seen under load with MPICH).
    time.sleep(ABORT_PAUSE)
    world.Abort(code)
    return code   # not reached: Abort ends every rank


def stop_together(stops, MPI, wait: float = STOP_TOGETHER_WAIT) -> bool:
    """True when every rank reaches this point within `wait` seconds (they stop together)."""
    request = stops.Ibarrier()
    deadline = time.monotonic() + wait
    while not request.Test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def local_rank(world, MPI=None) -> int:
    """This rank's number among the ranks on its host (which GPU it takes)."""
    MPI = MPI or mpi()
    return world.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
