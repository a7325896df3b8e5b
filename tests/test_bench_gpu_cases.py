"""The GPU benchmark's cases call the op bindings with the right arguments: each case
runs once here on CPU tensors at batch 1 (the same bindings take CPU and GPU tensors), so a
signature mistake shows up without a GPU. Timings are not looked at."""

import numpy as np

from convnet.bench import gpu


def test_every_gpu_bench_case_runs_on_cpu_tensors(monkeypatch):
    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    rng = np.random.default_rng(0)
    cases = gpu.alexnet_cases(rng, None, "fp32", n=1) + gpu.cifar_cases(rng, None, "fp32", n=2)
    ops = {c.op for c in cases}
    assert {"conv fwd fp32", "conv bwd fp32", "relu fwd", "lrn fwd", "lrn bwd", "maxpool fwd",
            "maxpool bwd", "dropout fwd", "dropout bwd", "fc fwd", "sgd update",
            "softmax+logloss"} <= ops
    for case in cases:
        case.run()
        assert case.flops > 0 or case.nbytes > 0, case.op


def test_peaks_from_the_device_figures():
    h100 = {"major": 9, "minor": 0, "sms": 132, "clock_ghz": 1.98}
    p = gpu.peaks(h100)
    assert abs(p["fp32"] / 1e12 - 66.9) < 0.1       # NVIDIA's H100 SXM FP32 figure
    assert abs(p["tf32"] / 1e12 - 535.2) < 0.5       # dense TF32 at this clock
    assert p["bf16"] == 2 * p["tf32"]
