"""The same net as a convnet config, built in PyTorch, for `python -m convnet.bench --train`'s
comparison column. Only timing depends on it: the layers have the config's shapes, groups,
pooling geometry, normalisations and neurons, so PyTorch does the same work per step; weights are
PyTorch's own initialisation. A layer type it cannot translate raises NotImplementedError naming
the layer, and the benchmark reports that net's PyTorch column as missing."""

import time

from convnet.config.values import norm_alpha, parse_neuron


def _neuron(F, spec, layer):
    name, a, b = parse_neuron(spec, layer)
    simple = {"relu": F.relu, "logistic": lambda x: x.sigmoid(), "abs": lambda x: x.abs(),
              "linear": lambda x: a * x + b, "tanh": lambda x: a * (b * x).tanh(),
              "brelu": lambda x: x.clamp(0, a), "square": lambda x: x * x,
              "sqrt": lambda x: x.sqrt(), "softrelu": F.softplus, "ident": lambda x: x}
    if name not in simple:
        raise NotImplementedError(f"{layer}: neuron {name!r} has no PyTorch translation")
    return simple[name]


def build(net, torch, layout):
    """A torch.nn.Module whose forward(x, labels) returns the mean log-loss of `net`'s (single)
    logreg cost; `layout` is torch.channels_last or torch.contiguous_format."""
    nn, F = torch.nn, torch.nn.functional
    specs = net.specs

    class Translated(nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []  # (name, fn(values) -> tensor)
            for s in specs:
                self.steps.append((s.name, self._layer(s)))

        def _layer(self, s):
            t, ins = s.type, s.inputs
            if t == "data":
                return None
            if t == "conv":
                c, f = s["channels"][0], net.output_shape(s.name)[0]
                conv = nn.Conv2d(c, f, s["filterSize"][0], s["stride"][0], s["padding"][0],
                                 groups=s["groups"][0]).to(memory_format=layout)
                self.add_module(s.name, conv)
                return lambda v: conv(v[ins[0]])
            if t == "fc":
                fan_in = sum(_size(net.output_shape(i)) for i in ins)
                fc = nn.Linear(fan_in, s["outputs"])
                self.add_module(s.name, fc)
                return lambda v: fc(torch.cat([v[i].flatten(1) for i in ins], 1))
            if t == "neuron":
                fn = _neuron(F, s["neuron"], s.name)
                return lambda v: fn(v[ins[0]])
            if t == "pool":
                return _pool(F, s, net.output_shape(s.name))
            if t == "cmrnorm":
                size, alpha = s["size"], norm_alpha("cmrnorm", s["scale"], s["size"])
                return lambda v: F.local_response_norm(v[ins[0]], size, alpha * size,
                                                       s["pow"], 2.0)
            if t == "rnorm":
                size, alpha = s["size"], norm_alpha("rnorm", s["scale"], s["size"])
                return lambda v: v[ins[0]] / (1 + alpha * size * size * F.avg_pool2d(
                    v[ins[0]] ** 2, size, 1, size // 2, count_include_pad=True)) ** s["pow"]
            if t in ("dropout", "dropout2"):
                return lambda v: F.dropout(v[ins[0]], 0.5, self.training)
            if t == "softmax":
                return lambda v: v[ins[0]]  # the cost takes logits: cross_entropy's fused form
            if t == "cost.logreg":
                return lambda v: F.cross_entropy(v[ins[1]], v[ins[0]])
            raise NotImplementedError(f"{s.name}: layer type {t!r} has no PyTorch translation")

        def forward(self, x, labels):
            values = {"labels": labels}
            data = [s.name for s in specs if s.type == "data" and s["dataIdx"] == 0]
            values[data[0]] = x
            for name, fn in self.steps:
                if fn is not None:
                    values[name] = fn(values)
            return values[[s.name for s in specs if s.type == "cost.logreg"][0]]

    return Translated()


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _pool(F, s, out_shape):
    """cuda-convnet's pooling windows start at `start` and run while they start inside the image;
    with start 0 that is ceil_mode pooling. The output size is checked against ours."""
    if s["start"] != 0:
        raise NotImplementedError(f"{s.name}: pooling with start != 0 has no translation")
    size, stride, src = s["sizeX"], s["stride"], s.inputs[0]
    pool = F.max_pool2d if s["pool"] == "max" else F.avg_pool2d

    def run(v):
        y = pool(v[src], size, stride, 0, ceil_mode=True)
        if tuple(y.shape[1:]) != tuple(out_shape):
            raise NotImplementedError(f"{s.name}: PyTorch pools to {tuple(y.shape[1:])}, "
                                      f"convnet to {tuple(out_shape)}")
        return y
    return run


def step_function(net, batch_x, labels, threads):
    """A closure running one PyTorch training step (forward, backward, SGD with momentum 0.9 and
    weight decay) on the batch, in whichever of the two memory layouts is faster here; and that
    layout's name. None where PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None, "PyTorch not installed"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    best = None
    for layout, name in ((torch.channels_last, "channels_last"),
                         (torch.contiguous_format, "NCHW")):
        model = build(net, torch, layout)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
        x = torch.from_numpy(batch_x).contiguous(memory_format=layout)
        y = torch.from_numpy(labels.astype("int64"))

        def step(model=model, opt=opt, x=x, y=y):
            opt.zero_grad(set_to_none=True)
            model(x, y).backward()
            opt.step()
        step()  # warm-up: oneDNN primitives are created on first use
        start = time.perf_counter()
        for _ in range(3):
            step()
        seconds = time.perf_counter() - start
        if best is None or seconds < best[0]:
            best = (seconds, step, name)
    return best[1], best[2]
