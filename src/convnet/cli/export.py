"""convnet-export: a trained net as an ONNX model, to run elsewhere (onnxruntime, TensorRT, ...).
Give a run folder, a checkpoint or a Net.save file and the model file to write; the model takes
float32 (N, C, H, W) images with the training mean subtracted, as Net.predict does, and gives
its class probabilities. Needs the onnx package: pip install "convnet[onnx]"."""

import argparse
import os
import sys

from .. import checkpoint
from ..export import ExportError, image_layer, output_layer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convnet-export", description=__doc__)
    p.add_argument("run", metavar="RUN", help="a run folder, checkpoint file or Net.save file")
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX file to write")
    return p


def fail(message: str) -> None:
    print(f"convnet-export: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..net import Net
    try:
        net = Net.load(args.run)
    except (checkpoint.CheckpointError, OSError, ValueError) as e:
        fail(str(e))
    try:
        path = net.to_onnx(args.model)
    except (ExportError, OSError) as e:
        fail(str(e))
    size = os.path.getsize(path) / 1e6
    image, output = image_layer(net).name, output_layer(net)

    def dims(layer):
        return ", ".join(map(str, net.output_shape(layer)))
    print(f"wrote {path} ({size:.1f} MB): input {image} float32 (N, {dims(image)}), output "
          f"{output} (N, {dims(output)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
