"""The config reader: cuda-convnet's two files with upstream's semantics, and errors that name
the file, line, section and key."""

import pathlib
import re

import pytest

from convnet import config
from convnet.config import ConfigError, ConfigWarning, parse, parse_text
from convnet.config.docs import render

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYER_DEFS = ROOT / "layer_defs"


def defs(text, params=None, strict=False):
    cfg = parse_text(text, "defs.cfg")
    prm = parse_text(params, "params.cfg") if params is not None else None
    return parse(cfg, prm, strict=strict)


HEAD = """
[data]
type=data
dataIdx=0
[labels]
type=data
dataIdx=1
"""
TAIL = """
[probs]
type=softmax
inputs={last}
[logprob]
type=cost.logreg
inputs=labels,probs
"""
FC_PARAMS = "epsW=0.01\nepsB=0.02\nmomW=0.9\nmomB=0.9\nwc=0.0005\n"
COST_PARAMS = "[logprob]\ncoeff=1\n"


def net(body, last, params="", strict=False):
    return defs(HEAD + body + TAIL.format(last=last), COST_PARAMS + params, strict=strict)


def error(body, last, params="", strict=False):
    with pytest.raises(ConfigError) as e:
        net(body, last, params, strict)
    return e.value


# ---- the shipped configs --------------------------------------------------------------------------

def test_alexnet_config_parses_as_the_paper_says():
    specs = parse(LAYER_DEFS / "alexnet.cfg", LAYER_DEFS / "alexnet-params.cfg")
    by_name = {s.name: s for s in specs}
    assert [s.name for s in specs if s.type == "conv"] == [f"conv{i}" for i in range(1, 6)]
    assert by_name["conv1"]["filterSize"] == [11] and by_name["conv1"]["stride"] == [4]
    assert [by_name[f"conv{i}"]["groups"][0] for i in range(1, 6)] == [1, 2, 1, 2, 2]
    assert [by_name[f"conv{i}"]["initB"] for i in range(1, 6)] == [0, 1, 0, 1, 1]
    assert by_name["fc6"]["initB"] == 1 and by_name["fc7"]["initB"] == 1
    assert by_name["fc8"]["initB"] == 0
    for name in ("rnorm1", "rnorm2"):  # k=2, n=5, alpha=1e-4, beta=0.75
        s = by_name[name]
        assert s["size"] == 5 and s["alpha"] == pytest.approx(1e-4)
        assert s["k"] == 2 and s["pow"] == 0.75
    assert by_name["dropout6"].type == "dropout2" and by_name["dropout6"]["keep"] == 0.5
    assert by_name["rnorm1"].inputs == ("conv1_neuron",)  # ReLU before the normalisation
    for s in specs:
        if s.type in ("conv", "fc"):
            assert s["initW"] == [0.01] and s["momW"] == [0.9] and s["wc"] == [0.0005]
            assert s["epsW"][0].value(0.5) == 0.01
    assert by_name["logprob"]["topk"] == 5


# ---- syntax ---------------------------------------------------------------------------------------

def test_reader_syntax():
    cfg = parse_text("# comment\n[a]\nType = data\nDATAIDX: 0\n; another\n[b]\nkey=one,\n"
                     "  two  # trailing comment\n", "x.cfg")
    a, b = cfg.sections
    assert (a.name, a.line) == ("a", 2) and a.get("dataidx").value == "0"
    assert a.get("type").line == 3
    assert b.get("key").value == "one,\ntwo"


@pytest.mark.parametrize("text, pattern", [
    ("[a]\n[a]\n", r"x.cfg:2: \[a\] section \[a\] is defined twice"),
    ("key=1\n", r"x.cfg:1: key=value before any \[section\]"),
    ("[a]\nno equals sign here\n", r"x.cfg:2: cannot parse this line"),
    ("[]\n", r"x.cfg:1: empty section name"),
])
def test_reader_errors(text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_text(text, "x.cfg")


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.cfg: file not found"):
        config.read(tmp_path / "nope.cfg")
    bad = tmp_path / "bin.cfg"
    bad.write_bytes(b"\xff\xfe\x00[")
    with pytest.raises(ConfigError, match="not a text file"):
        config.read(bad)


# ---- layer semantics ------------------------------------------------------------------------------

def test_inline_neuron_becomes_a_layer_that_consumers_read():
    specs = net("[fc1]\ntype=fc\ninputs=data\noutputs=10\ninitW=0.1\nneuron=tanh[1.7,0.6]\n",
                "fc1", "[fc1]\n" + FC_PARAMS)
    names = [s.name for s in specs]
    assert names == ["data", "labels", "fc1", "fc1_neuron", "probs", "logprob"]
    neuron = specs[3]
    assert neuron.type == "neuron" and neuron.implicit and neuron["neuron"] == "tanh[1.7,0.6]"
    assert specs[4].inputs == ("fc1_neuron",)


def test_per_input_lists_expand_and_count():
    body = ("[fc1]\ntype=fc\ninputs=data\noutputs=4\ninitW=0.1\n"
            "[fc2]\ntype=fc\ninputs=data,fc1\noutputs=3\ninitW=0.1,0.2\n")
    params = "[fc1]\n" + FC_PARAMS + "[fc2]\n" + FC_PARAMS.replace("wc=0.0005", "wc=0.1,0.2")
    specs = {s.name: s for s in net(body, "fc2", params)}
    assert specs["fc2"]["initW"] == [0.1, 0.2]
    assert specs["fc2"]["momW"] == [0.9, 0.9]  # one value for every input (v2)
    assert specs["fc2"]["wc"] == [0.1, 0.2]
    e = error(body.replace("initW=0.1,0.2", "initW=0.1,0.2,0.3"), "fc2", params)
    assert "2 comma-separated value(s)" in str(e) and e.key == "initW"


def test_schedules():
    sched = config.parse_schedule("dexp[base=0.01;tgtFactor=1000;numSteps=4]")
    assert [sched.value(p) for p in (0, 0.25, 0.26, 0.5, 0.75, 1.0)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0001, 0.00001])
    assert config.parse_schedule("0.5").value(0.7) == 0.5
    assert config.parse_schedule("1e-3").value(0) == 0.001
    lin = config.parse_schedule("LINEAR[base=1;tgtfactor=4]")
    assert lin.value(0.5) == pytest.approx(0.625)
    assert config.parse_schedule("exp[base=1;tgtFactor=100]").value(0.5) == pytest.approx(0.1)
    for bad in ("fast[base=1]", "exp[base=1]", "dexp[base=1;tgtFactor=2;numSteps=1]", "x"):
        with pytest.raises(ValueError):
            config.parse_schedule(bad)


def test_normalisation_scaling():
    body = ("[c]\ntype=conv\ninputs=data\nchannels=3\nfilters=4\nfilterSize=3\ninitW=0.1\n"
            "[n1]\ntype=cmrnorm\ninputs=c\nchannels=4\nsize=3\n"
            "[n2]\ntype=rnorm\ninputs=n1\nchannels=4\nsize=3\n")
    params = ("[c]\n" + FC_PARAMS + "[n1]\nscale=0.3\npow=0.75\n"
              "[n2]\nscale=0.9\npow=0.5\nminDiv=2\n")
    specs = {s.name: s for s in net(body, "n2", params)}
    assert specs["n1"]["alpha"] == pytest.approx(0.1) and specs["n1"]["k"] == 1.0
    assert specs["n2"]["alpha"] == pytest.approx(0.1) and specs["n2"]["k"] == 2.0


def test_every_supported_type_parses():
    body = """
[c]
type=conv
inputs=data
channels=3
filters=4
filterSize=3
initW=0.1
partialSum=4
[l]
type=local
inputs=c
channels=4
filters=4
filterSize=3
initW=0.1
[p]
type=pool
pool=avg
inputs=l
channels=4
sizeX=3
stride=2
[cm]
type=cmrnorm
inputs=p
channels=4
size=3
[rn]
type=rnorm
inputs=cm
channels=4
size=3
[cn]
type=cnorm
inputs=rn
channels=4
size=3
[nr]
type=neuron
inputs=cn
neuron=abs
[f1]
type=fc
inputs=nr
outputs=6
initW=0.1
[f2]
type=fc
inputs=nr
outputs=6
initW=0.1
[es]
type=eltsum
inputs=f1,f2
coeffs=1,-1
[em]
type=eltmax
inputs=f1,f2
[cc]
type=concat
inputs=es,em
[d1]
type=dropout
inputs=cc
[d2]
type=dropout2
inputs=d1
[h]
type=hs
inputs=d2
keep=0.7
[s2]
type=cost.sum2
inputs=h
"""
    params = "".join(f"[{n}]\n{FC_PARAMS}" for n in ("c", "l", "f1", "f2"))
    params += "".join(f"[{n}]\nscale=1\npow=0.75\n" for n in ("cm", "rn", "cn"))
    params += "[d1]\nkeep=0.8\n[d2]\nenable=false\n[s2]\ncoeff=0.5\n"
    specs = {s.name: s for s in net(body, "h", params)}
    assert specs["es"]["coeffs"] == [1.0, -1.0]
    assert specs["d1"]["keep"] == 0.8 and specs["d2"]["enable"] is False
    assert specs["h"]["keep"] == 0.7 and specs["s2"]["coeff"] == 0.5
    assert {s.type for s in specs.values()} >= {"conv", "local", "pool", "cmrnorm", "rnorm",
                                                 "cnorm", "neuron", "fc", "eltsum", "eltmax",
                                                 "concat", "dropout", "dropout2", "hs",
                                                 "cost.sum2", "softmax", "cost.logreg", "data"}


def test_gpu_key():
    specs = net("[fc1]\ntype=fc\ninputs=data\noutputs=2\ninitW=0.1\ngpu=0,1\n", "fc1",
                "[fc1]\n" + FC_PARAMS)
    assert specs[2].gpu == (0, 1) and specs[0].gpu is None
    e = error("[fc1]\ntype=fc\ninputs=data\noutputs=2\ninitW=0.1\ngpu=zero\n", "fc1",
              "[fc1]\n" + FC_PARAMS)
    assert e.key == "gpu"


# ---- errors ---------------------------------------------------------------------------------------

FC = "[fc1]\ntype=fc\ninputs=data\noutputs=10\ninitW=0.1\n"
FC_P = "[fc1]\n" + FC_PARAMS


@pytest.mark.parametrize("body, params, pattern, line, key", [
    (FC.replace("type=fc", "type=fully"), FC_P, "unknown layer type; valid types: .*conv", 9,
     "type"),
    (FC.replace("type=fc\n", ""), FC_P, "missing required key 'type'", 8, None),
    (FC.replace("type=fc", "type=blur"), FC_P, "layer type 'blur' is not supported yet", 9,
     "type"),
    (FC.replace("outputs=10\n", ""), FC_P, "missing required key 'outputs'", 8, None),
    (FC.replace("outputs=10", "outputs=ten"), FC_P, r"bad value \(expected an integer, found "
     "'ten'\\)", 11, "outputs"),
    (FC.replace("outputs=10", "outputs=0"), FC_P, "expected an integer >= 1", 11, "outputs"),
    (FC.replace("inputs=data", "inputs=nowhere"), FC_P, "input layer 'nowhere' is not defined",
     10, "inputs"),
    (FC.replace("inputs=data", "inputs=fc1"), FC_P, "cannot be its own input", 10, "inputs"),
    (FC + "neuron=sigmoid\n", FC_P, "unknown neuron 'sigmoid'", 13, "neuron"),
    (FC + "initWFunc=m.f()\n", FC_P, "'initWFunc' is not supported yet", 13, "initWFunc"),
    (FC, "", "requires a section \\[fc1\\] in the parameter file", None, None),
    # the parameter file starts with the cost's section: [fc1] is at line 3
    (FC, FC_P.replace("momB=0.9\n", ""), "missing required key 'momB'", 3, None),
    (FC, FC_P.replace("epsB=0.02", "epsB=fast"), "expected a number or a schedule", 5, "epsB"),
])
def test_errors_name_file_line_section_and_key(body, params, pattern, line, key):
    e = error(body, "fc1", params)
    assert e.section == "fc1" and e.line == line and e.key == key
    assert e.file == ("defs.cfg" if params == FC_P else "params.cfg")
    assert re.search(pattern, str(e)), str(e)


def test_input_defined_later_says_so():
    body = ("[fc1]\ntype=fc\ninputs=fc2\noutputs=2\ninitW=0.1\n"
            "[fc2]\ntype=fc\ninputs=data\noutputs=2\ninitW=0.1\n")
    e = error(body, "fc1", "[fc1]\n" + FC_PARAMS + "[fc2]\n" + FC_PARAMS)
    assert "not defined before this layer" in str(e)


def test_unused_layer_is_an_error():
    body = FC + "[fc2]\ntype=fc\ninputs=data\noutputs=3\ninitW=0.1\n"
    e = error(body, "fc1", FC_P + "[fc2]\n" + FC_PARAMS)
    assert "layer 'fc2' of type 'fc' is unused" in str(e) and e.line == 13


def test_unknown_key_warns_with_the_closest_key_and_fails_when_strict():
    body = FC.replace("initW=0.1", "initW=0.1\ninitw_=3")
    with pytest.warns(ConfigWarning, match=r"defs.cfg:13: \[fc1\] initw_: unknown key for "
                      r"type=fc; did you mean 'initW'\?"):
        net(body, "fc1", FC_P)
    e = error(body, "fc1", FC_P, strict=True)
    assert e.key == "initw_" and "--strict" in str(e)
    with pytest.warns(ConfigWarning, match="epsw_: unknown key .* did you mean 'epsW'"):
        net(FC, "fc1", FC_P + "epsw_=1\n")


def test_params_section_for_a_missing_layer_warns():
    with pytest.warns(ConfigWarning, match=r"\[conv9\] no layer of that name"):
        net(FC, "fc1", FC_P + "[conv9]\nepsW=1\n")


# ---- documentation --------------------------------------------------------------------------------

def test_docs_are_generated_from_the_schema():
    doc = (ROOT / "docs" / "layers.md").read_text()
    assert doc == render(), "docs/layers.md is stale: python -m convnet.config.docs > " \
                            "docs/layers.md"
    for name, t in config.REGISTRY.items():
        assert f"## `{name}`" in doc
        for k in t.keys + t.params:
            assert k.doc, f"{name}.{k.name} has no documentation"
            assert f"| `{k.name}` |" in doc


@pytest.mark.parametrize("expected, found, tail", [
    ("an integer", "ten", " (expected an integer, found 'ten')"),
    (None, "conv2", " (found 'conv2')"),
    ("a number", None, " (expected a number)"),
    (None, None, ""),
])
def test_error_text_says_only_what_it_knows(expected, found, tail):
    e = ConfigError("bad value", file="net.cfg", line=3, section="fc", key="outputs",
                    expected=expected, found=found)
    assert str(e) == "net.cfg:3: [fc] outputs: bad value" + tail
