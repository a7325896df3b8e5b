"""docs/design.md stays true: every op family of its table has its dispatcher, CPU file, kernel,
binding, Python function, reference, test and benchmark case where the table says, every public
op appears in the table, and adding an op touches at most ten code files."""

import re
from pathlib import Path

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from convnet.bench import shapes

ROOT = Path(__file__).resolve().parents[1]
DESIGN = (ROOT / "docs" / "design.md").read_text()
COLUMNS = ["family", "ops", "dispatch", "cpu", "cuda", "bindings", "python", "reference", "test",
           "bench"]


def _between(marker):
    match = re.search(rf"<!-- {marker}[^>]*-->\n(.*?)<!-- end {marker} -->", DESIGN, re.S)
    assert match, f"docs/design.md lost its '{marker}' markers"
    return match.group(1)


def _families():
    rows = [line for line in _between("op-families").splitlines() if line.startswith("| ")]
    table = []
    for line in rows[2:]:   # after the header and the --- row
        cells = [c.strip() for c in line.strip("| ").split(" | ")]
        assert len(cells) == len(COLUMNS), f"docs/design.md: malformed row {line!r}"
        row = dict(zip(COLUMNS, cells))
        for key in COLUMNS[1:-1]:
            row[key] = [v.strip() for v in row[key].split(",")]
        table.append(row)
    return table


FAMILIES = _families()


def _text(paths):
    return "\n".join((ROOT / p).read_text() for p in paths)


def test_the_table_lists_every_public_op_once():
    listed = [name for row in FAMILIES for name in row["ops"]]
    assert len(listed) == len(set(listed)), "an op is listed under two families"
    public = set(ops.__all__)
    assert set(listed) == public, (f"missing from docs/design.md: {sorted(public - set(listed))}; "
                                   f"not in convnet.ops: {sorted(set(listed) - public)}")


@pytest.mark.parametrize("row", FAMILIES, ids=lambda r: r["family"])
def test_every_named_file_exists(row):
    for key in COLUMNS[2:-1]:
        for path in row[key]:
            assert (ROOT / path).is_file(), f"{row['family']}: {key} file {path} does not exist"


@pytest.mark.parametrize("row", FAMILIES, ids=lambda r: r["family"])
def test_the_dispatcher_calls_cpu_and_cuda_functions_of_the_named_files(row):
    dispatch = _text(p for p in row["dispatch"] if p.endswith(".cpp"))
    cpu, cuda = _text(row["cpu"]), _text(row["cuda"])
    called_cpu = set(re.findall(r"\b(\w+_cpu)\b", dispatch))
    called_cuda = set(re.findall(r"\b(\w+_cuda)\b", dispatch))
    assert called_cpu and called_cuda, f"{row['family']}: no run_on_device branches found"
    for name in called_cpu:
        assert re.search(rf"\b{name}\b", cpu), f"{name} is not defined in {row['cpu']}"
    for name in called_cuda:
        assert re.search(rf"\b{name}\b", cuda), f"{name} is not defined in {row['cuda']}"
    assert "run_on_device" in dispatch


@pytest.mark.parametrize("row", FAMILIES, ids=lambda r: r["family"])
def test_each_op_is_bound_in_the_named_file_and_defined_in_the_named_module(row):
    bindings = _text(row["bindings"])
    (module_path,) = row["python"]
    module = module_path.removeprefix("src/").removesuffix(".py").replace("/", ".")
    for name in row["ops"]:
        assert name in __import__(module, fromlist=["__all__"]).__all__, \
            f"{name} is not in {module}.__all__"
        if hasattr(_core, name):   # ops such as cmrnorm_* reuse another op's binding
            assert f'"{name}"' in bindings, f"_core.{name} is not bound in {row['bindings']}"


@pytest.mark.parametrize("row", FAMILIES, ids=lambda r: r["family"])
def test_the_reference_and_the_test_file_cover_the_ops(row):
    tests = _text(row["test"])
    functions = [n for n in row["ops"] if n[0].islower()]
    for name in functions:
        assert re.search(rf"\b{name}\b", tests), f"{row['test']} never calls {name}"
    assert re.search(r"\bref\w*\.", tests) or "reference" in tests, \
        f"{row['test']} does not compare with a float64 reference"
    assert "mark.gpu" in tests, f"{row['test']} has no GPU comparison (a test marked gpu)"


def test_every_family_has_a_benchmark_case():
    rng = np.random.default_rng(0)
    labels = {case.op for case in shapes.alexnet(rng, n=1) + shapes.cifar10(rng, n=2)}
    for row in FAMILIES:
        assert any(row["bench"] in label for label in labels), \
            f"{row['family']}: no benchmark case '{row['bench']}' in convnet.bench.shapes"


def test_adding_an_op_touches_at_most_ten_code_files():
    steps = re.findall(r"^\d+\. `([^`]+)`", _between("add-an-op"), re.M)
    assert 0 < len(steps) <= 10, f"docs/design.md lists {len(steps)} files for a new op"
    for path in steps:
        # A pattern such as csrc/ops/<family>.h names a folder; a plain path names a file.
        where = ROOT / (path[:path.index("<")].rsplit("/", 1)[0] if "<" in path else path)
        assert where.exists(), f"docs/design.md names {path}, but {where} does not exist"
