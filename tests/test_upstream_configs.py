"""cuda-convnet's configs unchanged: data layers that state no shape= take it from the data (CIFAR
batches, MNIST IDX files, an image folder and its crop, the synthetic set's default or
--synthetic-shape), trained from the command line; a stated shape= the data cannot fill is a
config error naming the file, line, layer and key."""

import functools
import pathlib
import pickle

import numpy as np
import pytest
from PIL import Image

import convnet
from convnet.cli.train import main
from convnet.config import ConfigError, parse, read
from convnet.data import data_layer_shapes

ROOT = pathlib.Path(__file__).resolve().parent.parent
UPSTREAM = pathlib.Path(__file__).resolve().parent / "data"
LAYERS_80SEC = UPSTREAM / "layers-80sec.cfg"
PARAMS_80SEC = UPSTREAM / "layer-params-80sec.cfg"
NET_80SEC = ["--layers", str(LAYERS_80SEC), "--params", str(PARAMS_80SEC)]
TINY = ["--epochs", "1", "--mini", "16", "--test-freq", "4", "--no-progress",
        "--data-workers", "0"]


def write_cifar_batches(root, rng, size=32, batches=2, per_batch=32, classes=10):
    """cuda-convnet batches as its own scripts wrote them: one image per column, R, G, B planes."""
    root.mkdir()
    for b in range(1, batches + 1):
        x = rng.integers(0, 256, (per_batch, 3 * size * size), dtype=np.uint8)
        with open(root / f"data_batch_{b}", "wb") as f:
            pickle.dump({"data": x.T.copy(), "labels": list(rng.integers(0, classes, per_batch))},
                        f)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{k}" for k in range(classes)],
                     "num_vis": 3 * size * size}, f)
    return root


def write_idx(root, rng, train=48, test=16, hw=(28, 28)):
    """MNIST's four IDX files (unsigned-byte images and labels)."""
    root.mkdir()
    for stem, n in (("train", train), ("t10k", test)):
        x = rng.integers(0, 256, (n,) + hw, dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        (root / f"{stem}-images-idx3-ubyte").write_bytes(
            np.array([0x0803, n, *hw], ">i4").tobytes() + x.tobytes())
        (root / f"{stem}-labels-idx1-ubyte").write_bytes(
            np.array([0x0801, n], ">i4").tobytes() + y.tobytes())
    return root


def write_folder(root, rng, classes=3, train=6, val=2, size=(40, 36)):
    for split, count in (("train", train), ("val", val)):
        for k in range(classes):
            folder = root / split / f"class{k}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def without_shapes(text):
    """A config as cuda-convnet wrote it: the repository's, without its shape= lines."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("shape="))


def upstream_mnist(tmp_path):
    layers = tmp_path / "layers-mnist.cfg"
    layers.write_text(without_shapes((ROOT / "layer_defs" / "mnist.cfg").read_text()))
    return ["--layers", str(layers), "--params", str(ROOT / "layer_defs" / "mnist-params.cfg")]


def specs(path):
    return parse(read(path))


def train(argv, capsys):
    code = main(argv + TINY)
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def test_the_fixture_is_cuda_convnets_80sec_file_without_shapes():
    text = LAYERS_80SEC.read_text()
    assert "shape=" not in text
    assert "[data]\ntype=data\ndataIdx=0\n\n[labels]\ntype=data\ndataIdx=1\n" in text
    # The same net as layer_defs/, which adds only shape= (and comments).
    ours = (ROOT / "layer_defs" / "cifar10-80sec.cfg").read_text()
    describe = [(s.name, s.type, s.inputs, {k: v for k, v in s.values.items() if k != "shape"})
                for s in specs(LAYERS_80SEC)]
    assert describe == [(s.name, s.type, s.inputs,
                         {k: v for k, v in s.values.items() if k != "shape"})
                        for s in parse(convnet.config.parse_text(ours, "ours.cfg"))]


def test_80sec_config_trains_on_cifar_batches(tmp_path, rng, capsys):
    data = write_cifar_batches(tmp_path / "batches", rng)
    save = tmp_path / "run.npz"
    out = train(NET_80SEC + ["--data-path", str(data), "--save-path", str(save)], capsys)
    assert "on cifar data" in out and "images of 3x32x32" in out, out
    assert "final: " in out
    # The shape the data gave is kept: the checkpoint rebuilds, and tests, without being told.
    net = convnet.Net.load(save)
    assert net.output_shape("data") == (3, 32, 32) and net.output_shape("labels") == (1,)
    assert main(["-f", str(save), "--test-only", "--no-progress", "--data-workers", "0"]) == 0
    assert "logprob: " in capsys.readouterr().out


def test_cifar_crops_give_the_layer_the_crop_size(tmp_path, rng, capsys):
    data = write_cifar_batches(tmp_path / "batches", rng, size=28)
    layers = specs(LAYERS_80SEC)
    assert data_layer_shapes(layers, data)["data"] == (3, 28, 28)
    assert data_layer_shapes(layers, data, "cifar-cropped", crop_border=2)["data"] == (3, 24, 24)
    assert data_layer_shapes(layers, data, inner_size=20) == {"data": (3, 20, 20),
                                                              "labels": (1,)}
    out = train(NET_80SEC + ["--data-path", str(data), "--inner-size", "24"], capsys)
    assert "random 24x24 crops with reflections" in out, out


def test_mnist_config_without_shape_trains_on_idx_files(tmp_path, rng, capsys):
    data = write_idx(tmp_path / "mnist", rng)
    out = train(upstream_mnist(tmp_path) + ["--data-path", str(data)], capsys)
    assert "on idx data" in out and "images of 1x28x28" in out, out
    # The size is the IDX header's, not a fixed 28x28.
    other = write_idx(tmp_path / "small", rng, hw=(20, 20))
    assert data_layer_shapes(specs(LAYERS_80SEC), other, "mnist")["data"] == (1, 20, 20)


def test_80sec_config_trains_on_an_image_folder_with_a_crop(tmp_path, rng, capsys):
    data = write_folder(tmp_path / "images", rng)
    out = train(NET_80SEC + ["--data-path", str(data), "--inner-size", "32"], capsys)
    assert "on folder data" in out and "random 32x32 crops" in out, out
    # Without a crop the layer takes the size folders are scaled to.
    assert data_layer_shapes(specs(LAYERS_80SEC), data)["data"] == (3, 256, 256)


def shaped(tmp_path, image="3,32,32", labels=None):
    """The 80sec file with shape= stated on its data (and labels) layer."""
    text = LAYERS_80SEC.read_text().replace("dataIdx=0\n", f"dataIdx=0\nshape={image}\n")
    if labels:
        text = text.replace("dataIdx=1\n", f"dataIdx=1\nshape={labels}\n")
    path = tmp_path / "stated.cfg"
    path.write_text(text)
    line = text.splitlines().index(f"shape={image}") + 1
    return path, line


def test_a_stated_shape_that_fits_the_data_is_kept(tmp_path, rng):
    data = write_cifar_batches(tmp_path / "batches", rng)
    path, _ = shaped(tmp_path, "3,32,32", labels="1")
    assert data_layer_shapes(specs(path), data) == {"data": (3, 32, 32), "labels": (1,)}
    # A smaller square is a crop of the images, as before.
    path, _ = shaped(tmp_path, "3,24,24")
    assert data_layer_shapes(specs(path), data)["data"] == (3, 24, 24)


@pytest.mark.parametrize("stated, options, says", [
    ("1,32,32", [], "the images have 3 channel(s); the net's data layer wants 1"),
    ("3,40,40", [], "smaller than the 40x40"),
    ("3,32,32", ["--inner-size", "24"], "a crop of 24x24 does not fit the net's data layer of "
                                        "32x32"),
    ("3,32,24", [], "crops are square"),
])
def test_a_stated_shape_the_data_cannot_fill_is_a_config_error(tmp_path, rng, capsys, stated,
                                                               options, says):
    data = write_cifar_batches(tmp_path / "batches", rng)
    path, line = shaped(tmp_path, stated)
    with pytest.raises(SystemExit) as e:
        main(["--layers", str(path), "--params", str(PARAMS_80SEC), "--data-path", str(data)]
             + options + TINY)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: [data] shape: {stated} does not fit the data: " in err, err
    assert says in err and "without shape= the layer takes the data's" in err, err
    assert "Traceback" not in err


def test_the_error_names_the_file_line_layer_and_key(tmp_path, rng):
    data = write_idx(tmp_path / "mnist", rng)
    path, line = shaped(tmp_path, "2,28,28")
    with pytest.raises(ConfigError) as e:
        data_layer_shapes(specs(path), data)
    assert (e.value.file, e.value.line, e.value.section, e.value.key) == \
        (str(path), line, "data", "shape")
    assert "IDX images are grey" in str(e.value)


def test_a_labels_layer_stating_another_shape_is_a_config_error(tmp_path, rng):
    data = write_cifar_batches(tmp_path / "batches", rng)
    path, _ = shaped(tmp_path, "3,32,32", labels="10")
    with pytest.raises(ConfigError, match=r"\[labels\] shape: 10 does not fit the data: .*"
                                          r"one class index per sample"):
        data_layer_shapes(specs(path), data)


def test_synthetic_set_default_shape_follows_the_net(tmp_path, capsys):
    tiny = ["--synthetic-train-size", "32", "--synthetic-test-size", "16"]
    out = train(NET_80SEC + tiny, capsys)
    assert "the synthetic set" in out and "images of 3x32x32" in out, out
    # One input channel (channels=1 on the layer reading the data): MNIST's 28x28.
    out = train(upstream_mnist(tmp_path) + tiny, capsys)
    assert "images of 1x28x28" in out, out
    out = train(NET_80SEC + tiny + ["--synthetic-shape", "3,24,24"], capsys)
    assert "images of 3x24x24" in out, out


def test_synthetic_shape_option_is_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(NET_80SEC + ["--synthetic-shape", "3x32x32"] + TINY)
    assert e.value.code == 2
    assert "--synthetic-shape" in capsys.readouterr().err
    path, line = shaped(tmp_path, "3,32,32")
    with pytest.raises(SystemExit):
        main(["--layers", str(path), "--params", str(PARAMS_80SEC), "--synthetic-shape",
              "3,24,24"] + TINY)
    err = capsys.readouterr().err
    assert f"{path}:{line}: [data] shape: 3,32,32 does not fit the data: --synthetic-shape is " \
           "3,24,24" in err, err


@pytest.mark.parametrize("config, shape", [("alexnet", (3, 224, 224)),
                                           ("alexnet-2gpu", (3, 224, 224)),
                                           ("cifar10-18pct", (3, 32, 32)),
                                           ("mnist", (1, 28, 28))])
def test_synthetic_default_for_the_repositorys_configs_without_shape(tmp_path, config, shape):
    path = tmp_path / f"{config}.cfg"
    path.write_text(without_shapes((ROOT / "layer_defs" / f"{config}.cfg").read_text()))
    assert data_layer_shapes(specs(path)) == {"data": shape, "labels": (1,)}
    # The shape layer_defs/ states is the default: dropping shape= changes nothing.
    stated = {s.name: s["shape"] for s in specs(ROOT / "layer_defs" / f"{config}.cfg")
              if s.type == "data"}
    assert stated == {"data": shape, "labels": (1,)}


def test_net_from_cfg_takes_the_shapes_from_the_data(tmp_path, rng):
    data = write_cifar_batches(tmp_path / "batches", rng)
    shapes = functools.partial(data_layer_shapes, path=data, inner_size=24)
    net = convnet.Net.from_cfg(LAYERS_80SEC, PARAMS_80SEC, data_shapes=shapes)
    assert net.output_shape("data") == (3, 24, 24) and net.input_shape == (3, 24, 24)
    net = convnet.Net.from_cfg(LAYERS_80SEC, PARAMS_80SEC, data_shapes={"data": (3, 28, 28)})
    assert net.output_shape("data") == (3, 28, 28) and net.output_shape("labels") == (1,)
    with pytest.raises(ConfigError, match="does not state its sample shape"):
        convnet.Net.from_cfg(LAYERS_80SEC, PARAMS_80SEC)
