"""`python -m convnet.bench`: every op at the AlexNet and cuda-convnet CIFAR-10 layer shapes, timed
against this machine's own SGEMM rate (convolutions) and copy bandwidth (memory-bound ops)."""
