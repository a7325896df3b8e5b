"""The benchmark tool runs end to end on its quick case set and writes its figures."""

import json

import pytest

from convnet.bench.__main__ import main


def test_quick_run_writes_json_and_markdown(tmp_path, capsys):
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    assert main(["--quick", "--threads", "1", "--json", str(out_json),
                 "--markdown", str(out_md)]) == 0
    data = json.loads(out_json.read_text())
    assert data["meta"]["sgemm_gflops"] > 0 and data["meta"]["copy_gbps"] > 0
    ops = {r["op"] for r in data["results"]}
    assert "local bwd" in ops
    assert {"conv fwd", "conv bwd", "fc fwd", "relu fwd", "lrn bwd", "maxpool fwd",
            "rnorm bwd", "cnorm bwd", "dropout fwd", "softmax+logloss", "sgd update"} <= ops
    for r in data["results"]:
        assert r["ms"] > 0
        assert (r["gflops"] or 0) > 0 or (r["gbps"] or 0) > 0
    assert "| net | layer | op |" in out_md.read_text()
    assert "conv fwd" in capsys.readouterr().out


def test_filter_and_bad_arguments():
    with pytest.raises(SystemExit, match="no case matches"):
        main(["--quick", "--filter", "nothing-like-this"])
    with pytest.raises(SystemExit):
        main(["--quick", "--threads", "0"])
