"""Every op of the library on numpy arrays: forward and backward, CPU path.

Arrays are NCHW and C-contiguous. float32 is the library's type; float64 is accepted too (all
float arguments of one call share the dtype, and so does the result), which the gradient checks
use. Mistakes raise ``ValueError`` naming the op and the argument. docs/ops-api.md has the full
semantics; each function's docstring gives shapes.

Each op checks its arguments, allocates fresh numpy outputs and calls the one binding of the op in
convnet._core, over tensors that share the arrays' memory (DLPack, no copy). One module per family.
"""

from ..config.values import parse_neuron
from ._checks import IntOrPair
from .conv import conv_backward, conv_forward, conv_output_size, local_backward, local_forward
from .dropout import dropout_backward, dropout_forward, dropout_mask
from .eltwise import (bias_add_backward, bias_add_forward, concat_backward, concat_forward,
                      eltmax_backward, eltmax_forward, eltsum_backward, eltsum_forward)
from .fc import fc_backward, fc_forward
from .neuron import neuron_backward, neuron_forward
from .norm import (cmrnorm_backward, cmrnorm_forward, cnorm_backward, cnorm_forward,
                   lrn_backward, lrn_forward, rnorm_backward, rnorm_forward)
from .pool import pool_backward, pool_forward, pool_output_size
from .sgd import sgd_update
from .softmax import SoftmaxLogLoss, softmax_backward, softmax_forward, softmax_logloss

__all__ = [
    "conv_output_size", "conv_forward", "conv_backward",
    "local_forward", "local_backward",
    "fc_forward", "fc_backward",
    "parse_neuron", "neuron_forward", "neuron_backward",
    "lrn_forward", "lrn_backward", "cmrnorm_forward", "cmrnorm_backward",
    "rnorm_forward", "rnorm_backward", "cnorm_forward", "cnorm_backward",
    "pool_output_size", "pool_forward", "pool_backward",
    "bias_add_forward", "bias_add_backward",
    "eltsum_forward", "eltsum_backward", "eltmax_forward", "eltmax_backward",
    "concat_forward", "concat_backward",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "softmax_forward", "softmax_backward", "softmax_logloss", "SoftmaxLogLoss",
    "sgd_update",
]
