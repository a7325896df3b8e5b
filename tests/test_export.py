"""ONNX export: each shipped net (AlexNet, the CIFAR-10 nets, MNIST) and a net of every
exportable layer kind with odd geometry (pool windows that start before the image and overhang
it, conv outputs past the floor rule, even and odd cross-map windows, within-map and contrast
normalisation, unshared biases, several inputs, the neurons, eltsum/eltmax/concat, the dropout
kinds) pass onnx.checker and give our predictions in onnxruntime; layers ONNX cannot express
are refused by name; convnet-export writes the file."""

import pathlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import convnet  # noqa: E402
from convnet.cli import export as export_cli  # noqa: E402
from convnet.export import ExportError  # noqa: E402
from nets import build_net, cfg, classifier  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOL = 1e-4   # the issue's: predictions agree to 1e-4


def lively(net, rng, gain=1.5):
    """Weights that give peaked, input-dependent predictions (the configs' small initial weights
    make every probability nearly equal, which would hide a wrong layer)."""
    for name, value in net.params.items():
        fan_in = int(np.prod(value.shape[1:])) if value.ndim > 1 else 1
        if value.ndim == 6:   # local: (OH, OW, F, C, kh, kw)
            fan_in = int(np.prod(value.shape[3:]))
        scale = gain / np.sqrt(fan_in) if value.ndim > 1 else 0.1
        net.params[name] = rng.standard_normal(value.shape) * scale


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: x})[0]


def assert_same_predictions(net, x, tmp_path):
    path = net.to_onnx(tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(path), full_check=True)
    got, ours = run_onnx(path, x), net.predict(x)
    assert got.shape == ours.shape
    np.testing.assert_allclose(got, ours, rtol=TOL, atol=TOL)
    # the predictions are far from uniform, so agreement says something
    assert ours.max(axis=1).min() > 2.0 / ours.shape[1]
    return got


@pytest.mark.parametrize("name", ["mnist", "cifar10-80sec", "cifar10-18pct"])
def test_shipped_nets_give_our_predictions_in_onnxruntime(name, tmp_path, rng):
    net = convnet.Net.from_cfg(ROOT / "layer_defs" / f"{name}.cfg",
                               ROOT / "layer_defs" / f"{name}-params.cfg", seed=2)
    lively(net, rng)
    shape = net.output_shape("data")
    x = rng.standard_normal((3,) + tuple(shape)).astype(np.float32) * 40
    assert_same_predictions(net, x, tmp_path)


def test_alexnet_gives_our_predictions_in_onnxruntime(tmp_path, rng):
    # about 5 s: a 244 MB model written, checked and loaded
    net = convnet.Net.from_cfg(ROOT / "layer_defs" / "alexnet.cfg",
                               ROOT / "layer_defs" / "alexnet-params.cfg", seed=2)
    lively(net, rng, gain=2.0)
    x = rng.standard_normal((2, 3, 224, 224)).astype(np.float32) * 40
    assert_same_predictions(net, x, tmp_path)


ODD = classifier("3,13,11", """
[c1] type=conv inputs=data channels=3 filters=2 groups=3 filterSize=4 padding=1 stride=3
     initW=0.3 neuron=tanh[1.7,0.6]
[p1] type=pool pool=max inputs=c1 channels=6 sizeX=3 stride=2 start=-1 neuron=brelu[2]
[n1] type=cmrnorm inputs=p1 channels=6 size=4
[n2] type=cmrnorm inputs=n1 channels=6 size=3
[n3] type=rnorm inputs=n2 channels=6 size=3
[n4] type=cnorm inputs=n3 channels=6 size=2
[c2] type=conv inputs=n4,data channels=6,3 filters=4 filterSize=3,7 padding=1,0 stride=1,4
     sharedBiases=0 initW=0.3,0.3 neuron=linear[1.5,0.2]
[p2] type=pool pool=avg inputs=c2 channels=4 sizeX=2 stride=2 neuron=softrelu
[f1] type=fc inputs=p2 outputs=7 initW=0.3 neuron=abs
[f2] type=fc inputs=p2,c1 outputs=7 initW=0.3,0.3 neuron=logistic
[es] type=eltsum inputs=f1,f2 coeffs=1,-0.5
[em] type=eltmax inputs=f1,f2
[cc] type=concat inputs=es,em,p2
[d1] type=dropout inputs=cc
[d2] type=dropout2 inputs=d1
[d3] type=hs inputs=d2 keep=0.7
[fc] type=fc inputs=d3 outputs=5 initW=0.3
""")
ODD_PARAMS = cfg("""
[c1] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[c2] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[f1] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[f2] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[fc] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[n1] scale=0.5 pow=0.75 minDiv=2
[n2] scale=0.3 pow=0.6
[n3] scale=0.8 pow=0.75 minDiv=1.5
[n4] scale=0.6 pow=0.5 minDiv=2
[d1] keep=0.8
[d2] keep=0.6
[logprob] coeff=1
""")


def test_every_exportable_layer_kind_with_odd_geometry(tmp_path, rng):
    net = build_net(ODD, ODD_PARAMS, seed=3)
    lively(net, rng)
    x = rng.standard_normal((4, 3, 13, 11)).astype(np.float32) * 2
    assert_same_predictions(net, x, tmp_path)
    # the geometry really is odd: conv and pool outputs past ONNX's floor rule
    assert net.output_shape("c1") == (6, 5, 4) and net.output_shape("p1") == (6, 3, 2)


def test_a_batch_size_the_model_was_not_written_for(tmp_path, rng):
    net = build_net(ODD, ODD_PARAMS, seed=3)
    lively(net, rng)
    path = net.to_onnx(tmp_path / "m.onnx")
    x = rng.standard_normal((1, 3, 13, 11)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(path, x), net.predict(x), rtol=TOL, atol=TOL)


def test_layers_onnx_cannot_express_are_refused_by_name(tmp_path):
    layers = classifier("3,8,8", """
[loc] type=local inputs=data channels=3 filters=4 filterSize=3 initW=0.1
[n] type=cmrnorm inputs=loc channels=4 size=2 blocked=1
[fc] type=fc inputs=n outputs=3 initW=0.1
""")
    params = cfg("""
[loc] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[fc] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[n] scale=0.5 pow=0.75
[logprob] coeff=1
""")
    with pytest.raises(ExportError, match=r"ONNX has no operator for: loc \(local\), n "
                                          r"\(cmrnorm\); the model was not written"):
        build_net(layers, params).to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_convnet_export_writes_a_run_as_onnx(tmp_path, rng, capsys):
    net = convnet.Net.from_cfg(ROOT / "layer_defs" / "mnist.cfg",
                               ROOT / "layer_defs" / "mnist-params.cfg")
    lively(net, rng)
    net.save(tmp_path / "net.npz")
    assert export_cli.main([str(tmp_path / "net.npz"), str(tmp_path / "mnist.onnx")]) == 0
    out = capsys.readouterr().out
    assert "input data float32 (N, 1, 28, 28), output probs (N, 10)" in out
    x = rng.standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(tmp_path / "mnist.onnx", x), net.predict(x),
                               rtol=TOL, atol=TOL)
    with pytest.raises(SystemExit) as e:
        export_cli.main([str(tmp_path / "nowhere.npz"), str(tmp_path / "x.onnx")])
    assert e.value.code == 2 and "nowhere.npz" in capsys.readouterr().err


def test_without_onnx_the_error_names_the_extra(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx raises ImportError
    net = convnet.Net.from_cfg(ROOT / "layer_defs" / "mnist.cfg",
                               ROOT / "layer_defs" / "mnist-params.cfg")
    with pytest.raises(ExportError, match=r'pip install "convnet\[onnx\]"'):
        net.to_onnx(tmp_path / "m.onnx")
