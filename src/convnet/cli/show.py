"""convnet-show: pictures of a training run, as cuda-convnet's shownet drew them. Give a run
folder (the checkpoint.npz convnet-train saved in it) or a checkpoint file; each picture is
written as a PNG into that folder (or --out) and its path printed. Needs matplotlib:
pip install "convnet[show]"."""

import argparse
import os
import sys

from ..show import ShowError, cost_curves, filter_grid, layer_filters
from ..show import neighbour_pictures, open_run, open_test_data, predictions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convnet-show", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("run", metavar="RUN", help="a run folder (holding checkpoint.npz) or a "
                   "checkpoint file")
    p.add_argument("--show-cost", action="store_true", help="cost.png: training and test "
                   "log-loss and error rates against steps and epochs, learning-rate changes "
                   "marked")
    p.add_argument("--show-filters", metavar="LAYER", action="append", default=[],
                   help="filters-LAYER.png: the layer's filters as a grid of tiles, in colour "
                        "when they read RGB images (repeat for several layers)")
    p.add_argument("--show-preds", action="store_true", help="preds.png: test images with the "
                   "net's five most probable classes and the true class marked")
    p.add_argument("--show-neighbours", metavar="LAYER", help="neighbours-LAYER.png: test images "
                   "beside the training images whose features at LAYER are nearest in Euclidean "
                   "distance (the paper's Figure 4, right; e.g. fc7's 4,096)")
    p.add_argument("--out", metavar="DIR", help="folder for the PNG files (default: the run "
                   "folder, or the checkpoint's folder)")
    g = p.add_argument_group("filters")
    g.add_argument("--norm-filters", action="store_true", help="scale each filter's contrast on "
                   "its own (default: one scale for the whole grid, so magnitudes compare)")
    g.add_argument("--max-filters", type=int, default=256, help="draw at most this many filters")
    g.add_argument("--channels", type=int, default=8, help="input channels drawn per filter "
                   "where the filters are not RGB (one grey tile each)")
    g = p.add_argument_group("predictions")
    g.add_argument("--num-preds", type=int, default=8, help="test images to show")
    g.add_argument("--data-path", metavar="PATH", help="the data (default: where the run's "
                   "checkpoint says it trained; the synthetic set is regenerated)")
    g.add_argument("--data-provider", help="the provider of --data-path (as convnet-train's)")
    g = p.add_argument_group("neighbours")
    g.add_argument("--num-queries", type=int, default=5, help="test images to show, one a row")
    g.add_argument("--num-neighbours", type=int, default=6, help="training images per test image")
    g.add_argument("--train-features", metavar="DIR", help="the training split's features at "
                   "the layer, as convnet-train --write-features LAYER --feature-split train "
                   "wrote them (default: computed now, with a progress line)")
    return p


def fail(message: str) -> None:
    print(f"convnet-show: error: {message}", file=sys.stderr)
    sys.exit(2)


def run_name(run) -> str:
    return os.path.basename(run.folder) if os.path.basename(run.checkpoint_path) == \
        "checkpoint.npz" else os.path.basename(run.checkpoint_path)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.show_cost or args.show_filters or args.show_preds or args.show_neighbours):
        fail("nothing to show: give --show-cost, --show-filters LAYER, --show-preds and/or "
             "--show-neighbours LAYER")
    for name in ("max_filters", "channels", "num_preds", "num_queries", "num_neighbours"):
        if getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1")
    from ..show import draw   # after the argument checks: --help works without matplotlib
    try:
        run = open_run(args.run)
        out = args.out or run.folder
        name = run_name(run)
        if args.show_cost:
            curves = cost_curves(run.history)
            title = f"{name}: step {curves.steps[-1]}"
            print(draw.save_cost(curves, os.path.join(out, "cost.png"), title), flush=True)
        for layer in args.show_filters:
            weights, colour, what = layer_filters(run.net, layer)
            grid = filter_grid(weights, colour, per_filter=args.norm_filters,
                               max_filters=args.max_filters, max_channels=args.channels)
            shown = f"{grid.filters} of {grid.total_filters} filters"
            if not colour:
                shown += f", channels 0-{grid.channels - 1} of {grid.total_channels} (columns)"
            scale = "each filter scaled alone" if args.norm_filters else "one scale for all"
            title = f"{name} step {run.net.step}: {what}\n{shown}; {scale}"
            path = os.path.join(out, f"filters-{layer}.png")
            print(draw.save_filters(grid, path, title), flush=True)
        if args.show_preds:
            data = open_test_data(run.net, args.data_path, args.data_provider,
                                  run.data_options)
            try:
                preds = predictions(run.net, data, args.num_preds)
            finally:
                getattr(data, "close", lambda: None)()
            title = f"{name} step {run.net.step}"
            print(draw.save_preds(preds, os.path.join(out, "preds.png"), title), flush=True)
        if args.show_neighbours:
            layer = args.show_neighbours
            data = open_test_data(run.net, args.data_path, args.data_provider,
                                  run.data_options)
            try:
                pics = neighbour_pictures(run.net, data, layer, args.num_queries,
                                          args.num_neighbours, args.train_features)
            finally:
                getattr(data, "close", lambda: None)()
            title = f"{name} step {run.net.step}: nearest neighbours in {layer}"
            path = os.path.join(out, f"neighbours-{layer}.png")
            print(draw.save_neighbours(pics, path, title), flush=True)
    except ShowError as e:
        fail(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
