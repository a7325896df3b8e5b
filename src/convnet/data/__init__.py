"""Data: providers (cuda-convnet/CIFAR batches, ImageNet-style image folders, MNIST IDX files,
in-memory arrays and the built-in synthetic set), the paper's augmentation, and the background
loader that feeds the trainer. `for_net` puts them together for a net's data layer;
`data_layer_shapes` gives a config's data layers their shapes from the data."""

from .augment import AugmentedDataset, Augmentation, ColorPCA
from .cifar import CifarBatches
from .errors import DataError
from .folder import ImageFolder, load_image
from .idx import IdxDataset, fetch_mnist
from .loader import Loader
from .make_batches import make_batches
from .memory import ArrayDataset
from .open import open_dataset
from .provider import Provider
from .setup import for_net
from .shapes import data_layer_shapes
from .synthetic import SyntheticDataset

__all__ = ["ArrayDataset", "Augmentation", "AugmentedDataset", "CifarBatches", "ColorPCA",
           "DataError", "IdxDataset", "ImageFolder", "Loader", "Provider", "SyntheticDataset",
           "data_layer_shapes", "fetch_mnist", "for_net", "load_image", "make_batches",
           "open_dataset"]
