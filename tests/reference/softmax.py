"""Softmax, its backward pass, and the multinomial log-loss with top-k error counts
(docs/ops-api.md), in float64:
  probs[n] = exp(x[n] - max x[n]) / sum(...);  backward by the row Jacobian diag(y) - y y^T;
  loss = -sum_n log probs[n, label[n]];  d loss / dx = probs - onehot(labels);
  a sample is wrong at k when k or more classes are strictly more probable than its label.
"""

import numpy as np


def forward(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def backward(y, dy):
    y, dy = np.asarray(y, np.float64), np.asarray(dy, np.float64)
    # Jacobian of softmax row: diag(y) - y y^T
    return np.stack([(np.diag(yi) - np.outer(yi, yi)) @ gi for yi, gi in zip(y, dy)])


def logloss(x, labels, topk):
    """(probs, summed loss, dx, top1 errors, topk errors)."""
    x = np.asarray(x, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    probs = forward(x)
    rows = np.arange(len(labels))
    loss = float(-np.log(probs[rows, labels]).sum())
    dx = probs.copy()
    dx[rows, labels] -= 1
    above = (probs > probs[rows, labels][:, None]).sum(axis=1)
    return probs, loss, dx, int((above >= 1).sum()), int((above >= topk).sum())
