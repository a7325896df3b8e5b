"""Float64 numpy references of every op, written from the formulas in docs/ops-api.md and the
paper, independently of the C++ code: naive loops over output positions and windows, so that
they are easy to check by eye. They never import convnet."""
