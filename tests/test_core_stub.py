"""src/convnet/_core.pyi matches the built module: the same functions, classes and members, and for
every function and method the same parameter names in the same order with the same defaults
(read from the signatures pybind11 writes into each docstring). A binding added, renamed or
changed without its stub line fails here, and so does a stub line with no binding."""

import ast
from pathlib import Path

import pytest

import convnet
from convnet import _core

STUB = Path(convnet.__file__).with_name("_core.pyi")
# Bound only when the build has CUDA (csrc/bindings/core.cpp, csrc/bindings/devices.cpp).
CUDA_ONLY = {"cuda_synchronize", "cuda_time_ms", "pinned_array", "cuda_device_info",
             "cuda_can_access_peer", "cuda_copy_counts", "cuda_memcpy_peer", "cuda_stream_create",
             "cuda_stream_destroy", "cuda_double_on_stream"}
# Bound only by the emulated device's build (csrc/bindings/emulator.cpp).
EMULATOR_ONLY = {"emu_broken_kernel", "emu_access_checks"}
# Class attributes every pybind11 class or exception has, which the stub leaves out.
MACHINERY = {"__doc__", "__module__", "__weakref__", "__dict__", "_pybind11_conduit_v1_"}


def _stub_tree():
    return ast.parse(STUB.read_text(), filename=str(STUB))


def _stub_top_level():
    return {node.name: node for node in _stub_tree().body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _params(args: ast.arguments):
    """[(name, default or None)] of a signature; defaults as Python values."""
    assert not (args.vararg or args.kwarg or args.kwonlyargs), "unexpected signature shape"
    names = [a.arg for a in args.posonlyargs + args.args]
    defaults = [None] * (len(names) - len(args.defaults)) + [
        ast.literal_eval(d) for d in args.defaults]
    has_default = [False] * (len(names) - len(args.defaults)) + [True] * len(args.defaults)
    return [(n, d if h else "<required>") for n, d, h in zip(names, defaults, has_default)]


def _bound_params(fn, name):
    """The parameters of a pybind11 function from the signature on its docstring's first line."""
    first = (fn.__doc__ or "").lstrip().splitlines()[0]
    assert first.startswith(name + "("), f"{name}: no pybind11 signature in {first!r}"
    signature = first[len(name):first.rindex(" -> ")]
    return _params(ast.parse(f"def f{signature}: pass").body[0].args)


def _expected_names():
    names = set(_stub_top_level())
    if not hasattr(_core, "emu_broken_kernel"):
        names -= EMULATOR_ONLY
    return names if _core.built_with_cuda() else names - CUDA_ONLY


def test_the_stub_names_exactly_what_the_module_binds():
    bound = {n for n in dir(_core) if not n.startswith("_")}
    expected = _expected_names()
    assert not bound - expected, f"bound but missing from _core.pyi: {sorted(bound - expected)}"
    assert not expected - bound, f"in _core.pyi but not bound: {sorted(expected - bound)}"


FUNCTIONS = sorted(n for n, node in _stub_top_level().items() if isinstance(node, ast.FunctionDef))
CLASSES = sorted(n for n, node in _stub_top_level().items() if isinstance(node, ast.ClassDef))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_function_parameters_match(name):
    if not hasattr(_core, name):
        pytest.skip("not bound in this build (see the names test)")
    stub = _params(_stub_top_level()[name].args)
    assert _bound_params(getattr(_core, name), name) == stub


def _stub_members(cls_node):
    return {node.name: node for node in cls_node.body if isinstance(node, ast.FunctionDef)}


def _is_property(node):
    return any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)


@pytest.mark.parametrize("name", CLASSES)
def test_class_members_match(name):
    cls = getattr(_core, name)
    members = _stub_members(_stub_top_level()[name])
    # A slot wrapper is pybind11's default (Tensor's __init__, which refuses construction).
    bound = {k for k, v in vars(cls).items()
             if k not in MACHINERY and type(v).__name__ != "wrapper_descriptor"}
    assert bound == set(members), (f"{name}: bound but not in the stub "
                                   f"{sorted(bound - set(members))}, in the stub but not bound "
                                   f"{sorted(set(members) - bound)}")
    for member, node in members.items():
        value = vars(cls)[member]
        if _is_property(node):
            assert isinstance(value, property), f"{name}.{member} is not a property"
            continue
        fn = value.__func__ if isinstance(value, staticmethod) else value
        assert _bound_params(fn, member) == _params(node.args), f"{name}.{member}"


def test_the_checker_sees_a_wrong_parameter():
    # The comparison itself can fail: a stub line with a renamed parameter does not match.
    wrong = ast.parse("def lrn_forward(x, y, size, pre, blocked, alpha, beta, kk): ...").body[0]
    assert _bound_params(_core.lrn_forward, "lrn_forward") != _params(wrong.args)
