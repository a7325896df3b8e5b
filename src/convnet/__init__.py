"""convnet: a from-scratch CUDA/C++ convolutional-network library in the spirit of cuda-convnet.

The C++ core (`convnet._core`) holds tensors, devices and the ops; `convnet.ops` calls every op on
numpy arrays. The same installed package runs on the CPU and, where one is present, on a GPU.
"""

import os as _os

# OpenMP threads that spin while idle starve OpenBLAS's own threads when our loops and BLAS calls
# alternate (a 25x slowdown measured on a 2-core machine); this must be set before libgomp is
# loaded by _core.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Preloads the OpenBLAS shared library that _core links against (the rpath alone fails for
# editable and --target installs).
import scipy_openblas32 as _scipy_openblas32  # noqa: E402,F401

from . import _core  # noqa: E402
from ._core import (  # noqa: E402
    Device,
    Error,
    ShapeError,
    Tensor,
    allocator_stats,
    built_with_cuda,
    cuda_device_count,
    empty_cache,
    get_num_threads,
    set_num_threads,
)

from . import layers  # noqa: E402


def set_precision(name: str) -> None:
    """The math of the GPU's convolutions and matrix products: "fp32" (CUDA cores, the default),
    "tf32" or "bf16" (tensor cores, FP32 accumulation). The CPU path always computes in the
    net's dtype."""
    if name not in ("fp32", "tf32", "bf16"):
        raise ValueError(f"precision must be fp32, tf32 or bf16, got {name!r}")
    if hasattr(_core, "set_math_precision"):
        _core.set_math_precision(name)
    elif name != "fp32":
        raise RuntimeError("this build of convnet has no tensor-core kernels")


def get_precision() -> str:
    return _core.get_math_precision() if hasattr(_core, "get_math_precision") else "fp32"


def set_cpu_conv_algorithm(name: str) -> None:
    """How CPU convolutions run: "auto" (the default: the direct AVX-512 convolution for stride-1
    float32 layers with at most 64 filters per group where the CPU has AVX-512 and the batch gives
    every thread an image, im2col + GEMM elsewhere), "gemm" (always im2col + GEMM) or "direct" (direct wherever the layer fits, any
    batch). Results agree to float32 rounding; only speed differs."""
    _core.set_cpu_conv_algorithm(name)


def get_cpu_conv_algorithm() -> str:
    return _core.get_cpu_conv_algorithm()


def can_access_peer(device, peer) -> bool:
    """Whether GPU `device` can access GPU `peer`'s memory directly (cudaDeviceCanAccessPeer; False
    for one device with itself). A net on several GPUs copies peer to peer between those that can,
    through host memory between the others (Net.copy_paths() tells which). Devices are "cuda:N",
    Device or N."""
    def index(d):
        if isinstance(d, int):
            return d
        d = d if isinstance(d, Device) else Device(str(d))
        if d.type != "cuda":
            raise ValueError(f"can_access_peer: {d} is not a GPU")
        return d.index
    a, b = index(device), index(peer)
    if not hasattr(_core, "cuda_can_access_peer"):
        raise ValueError(f"can_access_peer: cuda:{a} does not exist (this build has no CUDA)")
    return _core.cuda_can_access_peer(a, b)


from .net import Net  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Device",
    "Error",
    "Net",
    "ShapeError",
    "Tensor",
    "allocator_stats",
    "built_with_cuda",
    "can_access_peer",
    "cuda_device_count",
    "empty_cache",
    "get_num_threads",
    "get_precision",
    "set_precision",
    "set_num_threads",
    "__version__",
]
