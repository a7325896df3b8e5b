"""convnet-show's pictures of a training run, as cuda-convnet's shownet drew them: the learning
curves from the checkpoint's history, the learned filters of a layer as a grid of image tiles,
test images with the net's five most probable classes, and test images beside their nearest
training images in a layer's features. The arrays behind each picture are
built here without matplotlib (so they can be tested and reused); draw.py turns them into PNGs."""

from .filters import FilterGrid, filter_grid, layer_filters, layers_with_filters
from .history import CostCurves, cost_curves
from .neighbours import NeighbourPictures, neighbour_pictures
from .preds import Predictions, open_test_data, predictions
from .run import Run, ShowError, open_run

__all__ = ["CostCurves", "FilterGrid", "NeighbourPictures", "Predictions", "Run", "ShowError",
           "cost_curves", "filter_grid", "layer_filters", "layers_with_filters",
           "neighbour_pictures", "open_run", "open_test_data", "predictions"]
