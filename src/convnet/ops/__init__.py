"""Every op of the library on numpy arrays: forward and backward, CPU path.

Arrays are NCHW and C-contiguous. float32 is the library's type; float64 is accepted too (all
float arguments of one call share the dtype, and so does the result), which the gradient checks
use. Mistakes raise ``ValueError`` naming the op and the argument. docs/ops-api.md has the full
semantics; each function's docstring gives shapes.

Each op checks its arguments, allocates fresh numpy outputs and calls the one binding of the op in
convnet._core, over tensors that share the arrays' memory (DLPack, no copy). One module per family.
"""

from . import conv, dropout, eltwise, fc, neuron, norm, pool, sgd, softmax
from ._checks import IntOrPair
from .conv import *  # noqa: F401,F403 (the names in conv.__all__)
from .dropout import *  # noqa: F401,F403 (the names in dropout.__all__)
from .eltwise import *  # noqa: F401,F403 (the names in eltwise.__all__)
from .fc import *  # noqa: F401,F403 (the names in fc.__all__)
from .neuron import *  # noqa: F401,F403 (the names in neuron.__all__)
from .norm import *  # noqa: F401,F403 (the names in norm.__all__)
from .pool import *  # noqa: F401,F403 (the names in pool.__all__)
from .sgd import *  # noqa: F401,F403 (the names in sgd.__all__)
from .softmax import *  # noqa: F401,F403 (the names in softmax.__all__)

# A new op is listed in its family module's __all__; a new family is added here.
__all__ = [*conv.__all__, *fc.__all__, *neuron.__all__, *norm.__all__, *pool.__all__,
           *eltwise.__all__, *dropout.__all__, *softmax.__all__, *sgd.__all__]
