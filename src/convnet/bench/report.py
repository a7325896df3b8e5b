"""Benchmark output: the console table (one row printed as each case finishes), JSON and a
markdown table for docs/performance.md."""

import json

COLUMNS = ["net", "layer", "op", "shape", "ms", "GFLOP/s", "GB/s", "of limit", "torch ms",
           "vs torch"]
WIDTHS = [8, 11, 15, 34, 9, 8, 7, 8, 9, 8]


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def row_cells(r):
    limit = r.get("fraction_of_limit")
    return [r["net"], r["layer"], r["op"], r["shape"], _fmt(r["ms"], 3), _fmt(r.get("gflops")),
            _fmt(r.get("gbps")), "-" if limit is None else f"{100 * limit:.0f}%",
            _fmt(r.get("torch_ms"), 3), _fmt(r.get("vs_torch"), 2)]


def header_line():
    return "  ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS))


def row_line(r):
    return "  ".join(c.ljust(w) for c, w in zip(row_cells(r), WIDTHS))


def markdown(meta, rows, summary_lines):
    out = [f"Machine: {meta['machine']}; threads {meta['threads']}; {meta['date']}; "
           f"convnet {meta['version']}.", "",
           f"Reference rates measured in the same run: SGEMM {meta['sgemm_gflops']:.1f} GFLOP/s "
           f"(2048^3 through convnet's OpenBLAS), copy {meta['copy_gbps']:.1f} GB/s "
           f"(threaded copy of 256 MiB, read + write).", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    out += [""] + summary_lines
    return "\n".join(out) + "\n"


def write_json(path, meta, rows, summary):
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": rows, "summary": summary}, f, indent=2)
