"""softmax followed by cost.logreg: the graph takes the gradient straight from the cost to the
softmax's input, coeff/N * (probs - onehot). It equals the two-step path where that is finite,
and stays finite where a probability underflows to zero (the two-step path divides by it)."""

import numpy as np

from nets import build_net, cfg, classifier

NET = classifier("4", "[fc] type=fc inputs=data outputs=3 initW=1")
# A second reader of the softmax (a cost of weight zero) turns the fusion off.
UNFUSED = NET + cfg("[probe] type=cost.sum2 inputs=probs")
PARAMS = cfg("[fc] epsW=0.1 epsB=0.1 momW=0 momB=0 [logprob] coeff=0.7")
PROBE = "[probe]\ncoeff=0\n"


def build(text, dtype):
    params = PARAMS + (PROBE if "probe" in text else "")
    return build_net(text, params, dtype=dtype, seed=1)


def test_fused_gradient_equals_the_two_step_gradient():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((5, 4)), np.array([0, 2, 1, 1, 0])
    fused, unfused = build(NET, "float64"), build(UNFUSED, "float64")
    unfused.params["fc.weights"] = fused.params["fc.weights"]
    g_fused, g_unfused = fused.gradients(x, labels), unfused.gradients(x, labels)
    for name in g_fused:
        np.testing.assert_allclose(g_fused[name], g_unfused[name], rtol=1e-12, atol=1e-14)
    # And it is the textbook gradient: coeff/N * (p - onehot) through the fc layer.
    p = fused.predict(x)
    delta = 0.7 / 5 * (p - np.eye(3)[labels])
    np.testing.assert_allclose(g_fused["fc.weights"], delta.T @ x, rtol=1e-12)
    np.testing.assert_allclose(g_fused["fc.biases"], delta.sum(axis=0), rtol=1e-12, atol=1e-15)


def test_an_underflowed_probability_still_gives_a_finite_gradient():
    fused, unfused = build(NET, "float32"), build(UNFUSED, "float32")
    w = np.array([[200, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    for net in (fused, unfused):
        net.params["fc.weights"] = w
    x, labels = np.array([[1, 0, 0, 0]], np.float32), np.array([1])
    assert fused.predict(x)[0, 1] == 0.0            # exp(-200) underflows in float32
    g = fused.gradients(x, labels)
    assert np.isfinite(g["fc.weights"]).all()
    np.testing.assert_allclose(g["fc.biases"], 0.7 * np.array([1, -1, 0]), atol=1e-6)
    assert not np.isfinite(unfused.gradients(x, labels)["fc.weights"]).all()
