"""The paper's update (docs/ops-api.md), out of place in float64:
  v <- mom v - wc eps w - eps grad;  w <- w + v (with the new v)."""

import numpy as np


def update(w, grad, v, eps, mom, wc):
    w, grad, v = (np.asarray(a, np.float64) for a in (w, grad, v))
    v_new = mom * v - wc * eps * w - eps * grad
    return w + v_new, v_new
