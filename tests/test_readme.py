"""The README's Python examples run as written (from the repository root, where its paths
point), and print what their comments say where a comment names a shape."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, monkeypatch, capsys):
    monkeypatch.chdir(README.parent)
    code = BLOCKS[index]
    exec(compile(code, f"README.md python block {index}", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    # A print(...) whose comment shows a shape must print that shape.
    shown = [c for line in code.splitlines() if line.startswith("print(")
             for c in re.findall(r"#\s*(\([\d, ]+\))", line)]
    for shape in shown:
        assert shape in printed, (shape, printed)
