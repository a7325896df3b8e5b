"""Data providers. For now the built-in synthetic dataset that convnet-train uses when no data
path is given; real datasets (CIFAR batches, image folders, MNIST) are the next issue."""

from .synthetic import SyntheticDataset

__all__ = ["SyntheticDataset"]
