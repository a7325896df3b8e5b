"""Bad input to every op: wrong dtype, wrong rank, wrong shape, a non-contiguous array, a
non-array, mixed float32/float64, and bad hyper-parameters each raise ValueError whose message
starts with the op's name and names the argument; nothing crashes.

Array cases are generated from one table of valid calls: each op lists its array arguments with
a valid value, an array of the wrong rank and one of the wrong shape (None where the op accepts
any), so a new op gets every category by adding one row."""

import re

import numpy as np
import pytest

import convnet
import convnet.ops as ops

F = np.float32


def z(*shape, dtype=F):
    return np.zeros(shape, dtype)


def strided(a):
    """A non-contiguous view with a's shape and values."""
    wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


X, W, B = z(2, 4, 6, 6), z(3, 4, 3, 3), z(3)
Y = z(2, 3, 4, 4)                       # conv output for X, W
P = z(2, 4, 3, 3)                       # pool output for X, size 3, stride 2
LW, LB = z(4, 4, 3, 4, 3, 3), z(3, 4, 4)  # local filter banks and biases for X, 3x3 kernels
POOL = dict(mode="max", size=3, stride=2)
CMR = dict(size=3, scale=1.0, pow=0.75)
SGD = dict(eps=0.1, mom=0.9, wc=0.0)

# op -> (call taking the array arguments by keyword, {argument: (valid, wrong rank, wrong shape)})
OPS = {
    "conv_forward": (lambda x=X, w=W, b=B: ops.conv_forward(x, w, b),
                     dict(x=(X, z(4, 6, 6), None), w=(W, z(3, 4, 3), z(3, 5, 3, 3)),
                          b=(B, z(3, 1), z(4)))),
    "conv_backward": (lambda x=X, w=W, dy=Y: ops.conv_backward(x, w, dy),
                      dict(x=(X, z(2, 4, 6), None), w=(W, z(3, 4, 9), z(3, 2, 3, 3)),
                           dy=(Y, z(2, 3, 16), z(2, 3, 5, 5)))),
    "local_forward": (lambda x=X, w=LW, b=LB: ops.local_forward(x, w, b),
                      dict(x=(X, z(2, 4, 36), None), w=(LW, z(4, 4, 3, 4, 9), z(3, 3, 3, 4, 3, 3)),
                           b=(LB, z(3, 16), z(3, 4, 3)))),
    "local_backward": (lambda x=X, w=LW, dy=Y: ops.local_backward(x, w, dy),
                       dict(x=(X, z(2, 4, 36), None), w=(LW, z(16, 3, 4, 3, 3), None),
                            dy=(Y, z(2, 3, 16), z(2, 3, 4, 5)))),
    "fc_forward": (lambda x=z(2, 5), w=z(3, 5), b=z(3): ops.fc_forward(x, w, b),
                   dict(x=(z(2, 5), z(5), None), w=(z(3, 5), z(15), z(3, 4)),
                        b=(z(3), z(3, 1), z(2)))),
    "fc_backward": (lambda x=z(2, 5), w=z(3, 5), dy=z(2, 3): ops.fc_backward(x, w, dy),
                    dict(x=(z(2, 5), z(5), None), w=(z(3, 5), z(3, 5, 1), z(3, 4)),
                         dy=(z(2, 3), z(6), z(2, 4)))),
    "neuron_forward": (lambda x=X: ops.neuron_forward(x, "relu"), dict(x=(X, None, None))),
    "neuron_backward": (lambda x=X, y=X, dy=X: ops.neuron_backward(x, y, dy, "relu"),
                        dict(x=(X, None, None), y=(X, z(2, 4, 36), z(2, 4, 6, 5)),
                             dy=(X, z(2, 4, 36), z(1, 4, 6, 6)))),
    "lrn_forward": (lambda x=X: ops.lrn_forward(x), dict(x=(X, z(4, 6, 6), None))),
    "lrn_backward": (lambda x=X, y=X, dy=X: ops.lrn_backward(x, y, dy),
                     dict(x=(X, z(4, 6, 6), None), y=(X, z(2, 4, 36), z(2, 4, 6, 5)),
                          dy=(X, z(2, 4, 36), z(2, 5, 6, 6)))),
    "cmrnorm_forward": (lambda x=X: ops.cmrnorm_forward(x, **CMR), dict(x=(X, z(2, 4, 36), None))),
    "cmrnorm_backward": (lambda x=X, y=X, dy=X: ops.cmrnorm_backward(x, y, dy, **CMR),
                         dict(x=(X, z(2, 4, 36), None), y=(X, z(2, 4, 6, 6, 1), z(2, 4, 6, 7)),
                              dy=(X, z(8, 36), z(3, 4, 6, 6)))),
    "rnorm_forward": (lambda x=X: ops.rnorm_forward(x, **CMR), dict(x=(X, z(2, 4, 36), None))),
    "rnorm_backward": (lambda x=X, y=X, dy=X: ops.rnorm_backward(x, y, dy, **CMR),
                       dict(x=(X, z(8, 36), None), y=(X, z(8, 36), z(2, 4, 6, 7)),
                            dy=(X, z(2, 4, 36), z(2, 4, 7, 6)))),
    "cnorm_forward": (lambda x=X: ops.cnorm_forward(x, **CMR), dict(x=(X, z(2, 4, 36), None))),
    "cnorm_backward": (lambda x=X, y=X, dy=X: ops.cnorm_backward(x, y, dy, **CMR),
                       dict(x=(X, z(8, 36), None), y=(X, z(8, 36), z(2, 4, 6, 7)),
                            dy=(X, z(2, 4, 36), z(2, 4, 7, 6)))),
    "pool_forward": (lambda x=X: ops.pool_forward(x, **POOL), dict(x=(X, z(4, 6, 6), None))),
    "pool_backward": (lambda x=X, y=P, dy=P: ops.pool_backward(x, y, dy, **POOL),
                      dict(x=(X, z(2, 4, 36), None), y=(P, z(2, 4, 9), z(2, 4, 2, 2)),
                           dy=(P, z(2, 4, 3, 3, 1), z(2, 4, 3, 4)))),
    "eltsum_forward": (lambda **a: ops.eltsum_forward([a.get("xs[0]", X), a.get("xs[1]", X)]),
                       {"xs[0]": (X, None, None), "xs[1]": (X, None, z(2, 4, 6, 5))}),
    "eltsum_backward": (lambda dy=X: ops.eltsum_backward(dy, [1.0, 2.0]), dict(dy=(X, None, None))),
    "eltmax_forward": (lambda **a: ops.eltmax_forward([a.get("xs[0]", X), a.get("xs[1]", X)]),
                       {"xs[0]": (X, None, None), "xs[1]": (X, z(2, 4, 36), z(1, 4, 6, 6))}),
    "eltmax_backward": (lambda y=X, dy=X, **a: ops.eltmax_backward(
                            [a.get("xs[0]", X), a.get("xs[1]", X)], y, dy),
                        {"xs[0]": (X, None, None), "xs[1]": (X, None, z(2, 4, 6, 5)),
                         "y": (X, z(2, 4, 36), z(2, 4, 6, 5)),
                         "dy": (X, z(2, 4, 36), z(2, 3, 6, 6))}),
    "concat_forward": (lambda **a: ops.concat_forward([a.get("xs[0]", X), a.get("xs[1]", z(2, 5))]),
                       {"xs[0]": (X, None, None), "xs[1]": (z(2, 5), None, z(3, 5))}),
    "concat_backward": (lambda dy=z(2, 149): ops.concat_backward(dy, [(2, 4, 6, 6), (2, 5)]),
                        dict(dy=(z(2, 149), z(298), z(2, 150)))),
    "dropout_forward": (lambda x=X: ops.dropout_forward(x), dict(x=(X, None, None))),
    "dropout_backward": (lambda dy=X: ops.dropout_backward(dy), dict(dy=(X, None, None))),
    "softmax_forward": (lambda x=z(2, 5): ops.softmax_forward(x), dict(x=(z(2, 5), z(10), None))),
    "softmax_backward": (lambda y=z(2, 5), dy=z(2, 5): ops.softmax_backward(y, dy),
                         dict(y=(z(2, 5), z(2, 5, 1), None), dy=(z(2, 5), z(10), z(2, 4)))),
    "softmax_logloss": (lambda x=z(2, 5): ops.softmax_logloss(x, [0, 1]),
                        dict(x=(z(2, 5), z(10), None))),
    "sgd_update": (lambda w=z(3, 2), grad=z(3, 2), v=z(3, 2): ops.sgd_update(w, grad, v, **SGD),
                   dict(w=(z(3, 2), None, None), grad=(z(3, 2), z(6), z(3, 3)),
                        v=(z(3, 2), z(3, 2, 1), z(2, 3)))),
}


def _array_cases():
    cases = []
    for op, (call, args) in OPS.items():
        names = list(args)
        for name, (valid, bad_rank, bad_shape) in args.items():
            def case(kind, value, op=op, call=call, name=name):
                cases.append(pytest.param(op, name, lambda: call(**{name: value}),
                                          id=f"{op}-{name}-{kind}"))
            case("int32", valid.astype(np.int32))
            case("float16", valid.astype(np.float16))
            case("non-contiguous", strided(valid))
            case("list", valid.tolist())
            if bad_rank is not None:
                case("rank", bad_rank)
            if bad_shape is not None:
                case("shape", bad_shape)
            if name != names[0]:
                # float64 after a float32 first argument: the dtypes must agree.
                case("mixed-float64", valid.astype(np.float64))
    return cases


@pytest.mark.parametrize("op, arg, call", _array_cases())
def test_bad_array_raises_value_error_naming_op_and_argument(op, arg, call):
    with pytest.raises(ValueError) as info:
        call()
    _assert_names(info.value, op, arg)


def _assert_names(error, op, arg):
    message = str(error)
    assert message.startswith(f"{op}:"), f"message does not start with '{op}:': {message!r}"
    assert re.search(rf"(?<![\w\[]){re.escape(arg)}(?![\w\]])", message[len(op) + 1:]), (
        f"message does not name '{arg}': {message!r}")


# (op, argument that must be named, call)
HYPER_CASES = [
    ("conv_forward", "stride", lambda: ops.conv_forward(X, W, stride=0)),
    ("conv_forward", "stride", lambda: ops.conv_forward(X, W, stride=(1, 0))),
    ("conv_forward", "stride", lambda: ops.conv_forward(X, W, stride=1.5)),
    ("conv_forward", "padding", lambda: ops.conv_forward(X, W, padding=-1)),
    ("conv_forward", "padding", lambda: ops.conv_forward(X, W, padding=(1, 2, 3))),
    ("conv_forward", "groups", lambda: ops.conv_forward(X, z(3, 2, 3, 3), groups=2)),
    ("conv_forward", "groups", lambda: ops.conv_forward(X, W, groups=0)),
    ("conv_forward", "rule", lambda: ops.conv_forward(X, W, rule="ceil")),
    ("conv_backward", "stride", lambda: ops.conv_backward(X, W, Y, stride=0)),
    ("conv_backward", "groups", lambda: ops.conv_backward(X, z(3, 1, 3, 3), Y, groups=4)),
    ("conv_output_size", "kernel", lambda: ops.conv_output_size(5, 7)),
    ("conv_output_size", "stride", lambda: ops.conv_output_size(5, 3, 0)),
    ("conv_output_size", "rule", lambda: ops.conv_output_size(5, 3, rule="round")),
    ("local_forward", "stride", lambda: ops.local_forward(X, LW, stride=0)),
    ("local_forward", "rule", lambda: ops.local_forward(X, LW, rule="same")),
    ("neuron_forward", "neuron", lambda: ops.neuron_forward(X, "nosuch")),
    ("neuron_forward", "neuron", lambda: ops.neuron_forward(X, "tanh[1]")),
    ("neuron_forward", "neuron", lambda: ops.neuron_forward(X, "relu[1]")),
    ("neuron_forward", "neuron", lambda: ops.neuron_forward(X, "brelu[-1]")),
    ("neuron_forward", "neuron", lambda: ops.neuron_forward(X, 3)),
    ("neuron_backward", "neuron", lambda: ops.neuron_backward(X, X, X, "linear[1,2,3]")),
    ("lrn_forward", "size", lambda: ops.lrn_forward(X, size=0)),
    ("lrn_forward", "alpha", lambda: ops.lrn_forward(X, alpha=-1)),
    ("lrn_forward", "beta", lambda: ops.lrn_forward(X, beta=float("nan"))),
    ("lrn_forward", "k", lambda: ops.lrn_forward(X, k=-1.0)),
    ("lrn_backward", "size", lambda: ops.lrn_backward(X, X, X, size=2.5)),
    ("cmrnorm_forward", "size", lambda: ops.cmrnorm_forward(X, size=0, scale=1, pow=1)),
    ("cmrnorm_forward", "scale", lambda: ops.cmrnorm_forward(X, size=3, scale=-1, pow=1)),
    ("cmrnorm_forward", "pow", lambda: ops.cmrnorm_forward(X, size=3, scale=1, pow="x")),
    ("cmrnorm_forward", "min_div", lambda: ops.cmrnorm_forward(X, size=3, scale=1, pow=1,
                                                               min_div=-2)),
    ("cmrnorm_forward", "blocked", lambda: ops.cmrnorm_forward(X, size=3, scale=1, pow=1,
                                                               blocked="yes")),
    ("cmrnorm_backward", "scale", lambda: ops.cmrnorm_backward(X, X, X, size=3, scale=float("inf"),
                                                               pow=1)),
    ("rnorm_forward", "size", lambda: ops.rnorm_forward(X, size=0, scale=1, pow=1)),
    ("rnorm_forward", "scale", lambda: ops.rnorm_forward(X, size=3, scale=-1, pow=1)),
    ("cnorm_backward", "min_div", lambda: ops.cnorm_backward(X, X, X, size=3, scale=1, pow=1,
                                                            min_div=float("nan"))),
    ("eltsum_forward", "coeffs", lambda: ops.eltsum_forward([X, X], [1.0])),
    ("eltsum_forward", "coeffs", lambda: ops.eltsum_forward([X, X], [1.0, "two"])),
    ("eltsum_forward", "xs", lambda: ops.eltsum_forward([])),
    ("eltmax_forward", "xs", lambda: ops.eltmax_forward(X)),
    ("concat_backward", "shapes", lambda: ops.concat_backward(z(2, 149), [(2, 4, 6, 6), (2, 6)])),
    ("concat_backward", "shapes", lambda: ops.concat_backward(z(2, 149), "shapes")),
    ("pool_forward", "mode", lambda: ops.pool_forward(X, mode="min", size=3, stride=2)),
    ("pool_forward", "size", lambda: ops.pool_forward(X, mode="max", size=0, stride=2)),
    ("pool_forward", "stride", lambda: ops.pool_forward(X, mode="max", size=3, stride=0)),
    ("pool_forward", "start", lambda: ops.pool_forward(X, mode="max", size=3, stride=2,
                                                       start=1.5)),
    ("pool_forward", "outputs", lambda: ops.pool_forward(X, mode="max", size=3, stride=2,
                                                         outputs=-1)),
    ("pool_forward", "start", lambda: ops.pool_forward(X, mode="max", size=2, stride=1, start=-2)),
    ("pool_backward", "mode", lambda: ops.pool_backward(X, P, P, mode="sum", size=3, stride=2)),
    ("pool_output_size", "window", lambda: ops.pool_output_size(5, 0, 1)),
    ("pool_output_size", "stride", lambda: ops.pool_output_size(5, 2, 0)),
    ("dropout_forward", "p", lambda: ops.dropout_forward(X, p=1.0)),
    ("dropout_forward", "p", lambda: ops.dropout_forward(X, p=-0.1)),
    ("dropout_forward", "p", lambda: ops.dropout_forward(X, p=float("nan"))),
    ("dropout_forward", "seed", lambda: ops.dropout_forward(X, seed=-1)),
    ("dropout_forward", "seed", lambda: ops.dropout_forward(X, seed=2**64)),
    ("dropout_forward", "step", lambda: ops.dropout_forward(X, step=-1)),
    ("dropout_forward", "layer", lambda: ops.dropout_forward(X, layer=2**32)),
    ("dropout_backward", "step", lambda: ops.dropout_backward(X, step=2**64)),
    ("dropout_backward", "p", lambda: ops.dropout_backward(X, p=1.5)),
    ("dropout_mask", "shape", lambda: ops.dropout_mask((3, -1), p=0.5, seed=0, step=0)),
    ("dropout_mask", "shape", lambda: ops.dropout_mask("big", p=0.5, seed=0, step=0)),
    ("dropout_mask", "p", lambda: ops.dropout_mask((3,), p=1.0, seed=0, step=0)),
    ("softmax_logloss", "labels?", lambda: ops.softmax_logloss(z(2, 3), [0, 3])),
    ("softmax_logloss", "labels?", lambda: ops.softmax_logloss(z(2, 3), [0, -1])),
    ("softmax_logloss", "labels", lambda: ops.softmax_logloss(z(2, 3), [0])),
    ("softmax_logloss", "labels", lambda: ops.softmax_logloss(z(2, 3), [0.5, 1.0])),
    ("softmax_logloss", "labels", lambda: ops.softmax_logloss(z(2, 3), ["a", "b"])),
    ("softmax_logloss", "topk", lambda: ops.softmax_logloss(z(2, 3), [0, 1], topk=0)),
    ("sgd_update", "eps", lambda: ops.sgd_update(z(3), z(3), z(3), eps="x", mom=1, wc=0)),
    ("sgd_update", "mom", lambda: ops.sgd_update(z(3), z(3), z(3), eps=1, mom=float("nan"),
                                                 wc=0)),
    ("sgd_update", "wc", lambda: ops.sgd_update(z(3), z(3), z(3), eps=1, mom=1, wc=None)),
]


@pytest.mark.parametrize("op, arg, call", HYPER_CASES,
                         ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(HYPER_CASES)])
def test_bad_hyper_parameter_raises_value_error_naming_op_and_argument(op, arg, call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{op}:"), f"message does not start with '{op}:': {message!r}"
    assert re.search(rf"\b{arg}\b", message[len(op) + 1:]), (
        f"message does not name '{arg.rstrip('?')}': {message!r}")


def test_core_rejects_bad_buffers_without_crashing():
    # The raw bindings are a second line of defence: they too refuse wrong buffers. They take
    # tensors only; numpy arrays become tensors through DLPack, which refuses what is unsafe.
    from convnet import _core
    t = _core.Tensor.from_dlpack
    with pytest.raises(ValueError, match="conv_forward: y must have shape"):
        _core.conv_forward(t(X), t(W), None, t(z(2, 5, 4, 4)), 1, 1, 0, 0, 1)
    with pytest.raises(TypeError):
        _core.neuron_forward(z(3), z(3), "relu", 1.0, 0.0)
    with pytest.raises(ValueError, match="only float32 and float64"):
        t(z(3, dtype=np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        t(strided(z(4)))
    ro = z(3)
    ro.flags.writeable = False
    with pytest.raises(BufferError, match="readonly"):
        t(ro)  # numpy will not hand out read-only memory that could be written


def test_read_only_inputs_are_accepted():
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(F)
    w = np.random.default_rng(1).standard_normal((3, 4, 3, 3)).astype(F)
    want = ops.conv_forward(x, w)
    x.flags.writeable = False
    w.flags.writeable = False
    np.testing.assert_array_equal(ops.conv_forward(x, w), want)


def test_non_native_byte_order_is_a_value_error():
    with pytest.raises(ValueError, match="neuron_forward: x must be float32 or float64 in native"):
        ops.neuron_forward(z(3).astype(">f4"), "relu")


@pytest.mark.parametrize("op", sorted(OPS))
def test_empty_batch_is_a_result_or_a_value_error(op):
    # Batch 0 is not in the spec: either answer is fine, anything else (a crash, another
    # exception type) is not.
    call, args = OPS[op]
    empty = {}
    for name, (valid, _, _) in args.items():
        empty[name] = np.zeros((0,) + valid.shape[1:], valid.dtype)
    if op == "softmax_logloss":
        call = lambda x: ops.softmax_logloss(x, np.zeros(0, np.int64))  # noqa: E731
    try:
        call(**empty)
    except (ValueError, convnet.Error):
        pass


def test_float64_is_accepted_and_preserved():
    y = ops.conv_forward(X.astype(np.float64), W.astype(np.float64))
    assert y.dtype == np.float64
