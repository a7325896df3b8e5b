"""Importing cuda-convnet's own checkpoints: matrices written in cuda-convnet's layouts (built here
independently, from docs/cuda-convnet-format.md, section 6.4) give the outputs that
cuda-convnet's own arithmetic on those matrices gives; momenta, run directories, Python 2
pickles with cuda-convnet's option objects, and the errors."""

import pickle
import sys
import types

import numpy as np
import pytest

import convnet
from convnet import checkpoint
from convnet.cli.train import main
from convnet.cuda_convnet_checkpoint import is_cuda_convnet_checkpoint
from nets import cfg, classifier

LAYERS = classifier("4,6,5", """
[conv] type=conv inputs=data channels=4 groups=2 filters=3 filterSize=3 padding=1 stride=1
       initW=0.1
[loc] type=local inputs=conv channels=6 filters=2 filterSize=3 padding=1 stride=2 initW=0.1
[fc] type=fc inputs=conv,loc outputs=3 initW=0.1,0.1
""")
PARAMS = cfg("""
[conv] epsW=0.01 epsB=0.01 momW=0.9 momB=0.9
[loc] epsW=0.01 epsB=0.01 momW=0.9 momB=0.9
[fc] epsW=0.01,0.01 epsB=0.01 momW=0.9,0.9 momB=0.9
[logprob] coeff=1
""")


def patches(x, k, stride, pad, oh, ow):
    """(N, OH, OW, C*k*k) in cuda-convnet's row order: channel, then y, then x."""
    n, c, h, w = x.shape
    big = np.zeros((n, c, h + 2 * pad + k * stride, w + 2 * pad + k * stride))
    big[:, :, pad:pad + h, pad:pad + w] = x
    out = np.empty((n, oh, ow, c * k * k))
    for oy in range(oh):
        for ox in range(ow):
            win = big[:, :, oy * stride:oy * stride + k, ox * stride:ox * stride + k]
            out[:, oy, ox] = win.reshape(n, -1)
    return out


def cuda_convnet_layers(rng, scale=1.0):
    """Random matrices in cuda-convnet's shapes, as its layer dicts hold them."""
    def layer(name, weights, biases):
        weights, biases = [w * scale for w in weights], biases * scale
        return {"name": name, "weights": weights, "biases": biases,
                "weightsInc": [w * 0.01 for w in weights], "biasesInc": biases * 0.01}
    return [
        {"name": "data", "type": "data"},
        layer("conv", [rng.standard_normal((2 * 9, 6))], rng.standard_normal((6, 1))),
        # local: 4x3 modules, 6 channels in one group, 3x3 filters, 2 filters.
        layer("loc", [rng.standard_normal((12 * 6 * 9, 2))], rng.standard_normal((2 * 12, 1))),
        layer("fc", [rng.standard_normal((6 * 6 * 5, 3)), rng.standard_normal((2 * 4 * 3, 3))],
              rng.standard_normal((1, 3))),
    ]


def write_checkpoint(path, layers, version=1):
    # cuda-convnet pickles its option parser under module 'options'; make one that does not
    # exist when the file is read.
    module = types.ModuleType("options")

    class OptionsParser:
        pass
    OptionsParser.__module__ = "options"
    OptionsParser.__qualname__ = "OptionsParser"
    module.OptionsParser = OptionsParser
    sys.modules["options"] = module
    try:
        op = OptionsParser()
        op.values = {"mini": 128}
        model = {"layers": layers if version == 1 else {l["name"]: l for l in layers},
                 "epoch": 3, "batchnum": 2, "train_outputs": [], "test_outputs": []}
        with open(path, "wb") as f:
            pickle.dump({"model_state": model, "op": op}, f, protocol=2)
    finally:
        del sys.modules["options"]


@pytest.fixture
def cfg(tmp_path):
    layers, params = tmp_path / "l.cfg", tmp_path / "p.cfg"
    layers.write_text(LAYERS)
    params.write_text(PARAMS)
    return layers, params


@pytest.mark.parametrize("version", [1, 2])
def test_outputs_match_cuda_convnets_arithmetic(tmp_path, cfg, rng, version):
    cc = cuda_convnet_layers(rng)
    write_checkpoint(tmp_path / "3.2", cc, version)
    net = convnet.Net.from_cuda_convnet(tmp_path / "3.2", *cfg, dtype="float64")
    x = rng.standard_normal((2, 4, 6, 5))
    conv_w, conv_b = cc[1]["weights"][0], cc[1]["biases"]
    # conv: filter column j belongs to group j // 3 and reads that group's 2 channels.
    want_conv = np.empty((2, 6, 6, 5))
    for g in range(2):
        p = patches(x[:, 2 * g:2 * g + 2], 3, 1, 1, 6, 5)
        want_conv[:, 3 * g:3 * g + 3] = (p @ conv_w[:, 3 * g:3 * g + 3]).transpose(0, 3, 1, 2)
    want_conv += conv_b.reshape(1, 6, 1, 1)
    np.testing.assert_allclose(net.features(x, "conv"), want_conv, rtol=1e-10, atol=1e-10)
    # local: module-major filter banks, biases filter-major over modules.
    loc_w = cc[2]["weights"][0].reshape(12, 54, 2)
    p = patches(want_conv, 3, 2, 1, 4, 3).reshape(2, 12, 54)
    want_loc = np.einsum("nmk,mkf->nfm", p, loc_w) + cc[2]["biases"].reshape(1, 2, 12)
    want_loc = want_loc.reshape(2, 2, 4, 3)
    np.testing.assert_allclose(net.features(x, "loc"), want_loc, rtol=1e-10, atol=1e-10)
    # fc: inputs (channel, y, x) flattened, times the inputSize x outputs matrix.
    fc = cc[3]
    want_fc = (want_conv.reshape(2, -1) @ fc["weights"][0] +
               want_loc.reshape(2, -1) @ fc["weights"][1] + fc["biases"].reshape(1, 3))
    np.testing.assert_allclose(net.features(x, "fc"), want_fc, rtol=1e-10, atol=1e-10)


def test_momenta_become_velocities_and_directories_take_the_latest(tmp_path, cfg, rng):
    run = tmp_path / "ConvNet__2012-09-01_10.00.00"
    run.mkdir()
    old, new = cuda_convnet_layers(rng), cuda_convnet_layers(rng)
    write_checkpoint(run / "2.10", old)
    write_checkpoint(run / "10.1", new)      # natural order: 10.1 is the latest
    assert is_cuda_convnet_checkpoint(run) and is_cuda_convnet_checkpoint(run / "2.10")
    net = convnet.Net.from_cuda_convnet(run, *cfg, dtype="float64")
    arrays = net.state_arrays()
    np.testing.assert_allclose(arrays["param/fc.weights.1"], new[3]["weights"][1].T)
    np.testing.assert_allclose(arrays["velocity/fc.weights.1"], new[3]["weightsInc"][1].T)
    np.testing.assert_allclose(arrays["velocity/conv.biases"], new[1]["biasesInc"].ravel())


def test_errors_name_the_file_and_layer(tmp_path, cfg, rng):
    cc = cuda_convnet_layers(rng)
    cc[3]["weights"][1] = cc[3]["weights"][1][:-1]
    write_checkpoint(tmp_path / "1.1", cc)
    with pytest.raises(checkpoint.CheckpointError, match=r"1\.1.*layer 'fc' weights\[1\]"):
        convnet.Net.from_cuda_convnet(tmp_path / "1.1", *cfg)
    write_checkpoint(tmp_path / "1.2", [l for l in cc if l["name"] != "loc"])
    with pytest.raises(checkpoint.CheckpointError, match="loc are not in the checkpoint"):
        convnet.Net.from_cuda_convnet(tmp_path / "1.2", *cfg)
    (tmp_path / "1.3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(checkpoint.CheckpointError, match="not a readable cuda-convnet"):
        convnet.Net.from_cuda_convnet(tmp_path / "1.3", *cfg)


def test_cli_imports_and_trains_on(tmp_path, cfg, rng, capsys):
    write_checkpoint(tmp_path / "3.2", cuda_convnet_layers(rng, scale=1e-3))
    small = ["--synthetic-train-size", "8", "--synthetic-test-size", "4", "--mini", "4",
             "--synthetic-classes", "3", "--no-progress", "--epochs", "1"]
    with pytest.raises(SystemExit) as e:
        main(["-f", str(tmp_path / "3.2")] + small)
    assert e.value.code == 2
    assert "give the layer definitions" in capsys.readouterr().err
    save = tmp_path / "ours.npz"
    assert main(["-f", str(tmp_path / "3.2"), "--layers", str(cfg[0]), "--params", str(cfg[1]),
                 "--save-path", str(save)] + small) == 0
    assert "imported cuda-convnet checkpoint" in capsys.readouterr().out
    assert convnet.Net.load(save).step == 2
