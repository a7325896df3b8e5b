"""Benchmark output: the console table (one row printed as each case finishes), JSON and a
markdown table for docs/performance.md."""

import json

COLUMNS = ["net", "layer", "op", "shape", "ms", "GFLOP/s", "GB/s", "of limit", "torch ms",
           "vs torch"]
WIDTHS = [8, 15, 15, 34, 9, 8, 7, 8, 9, 8]


def _fmt(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# Other processes' load (cores) above which a row, or the whole run, is flagged as disturbed.
BUSY = 0.25


def row_cells(r):
    limit = r.get("fraction_of_limit")
    ms = _fmt(r["ms"], 3) + (" *" if (r.get("other_load_cores") or 0) > BUSY else "")
    return [r["net"], r["layer"], r["op"], r["shape"], ms, _fmt(r.get("gflops")),
            _fmt(r.get("gbps")), "-" if limit is None else f"{100 * limit:.0f}%",
            _fmt(r.get("torch_ms"), 3), _fmt(r.get("vs_torch"), 2)]


def header_line():
    return "  ".join(c.ljust(w) for c, w in zip(COLUMNS, WIDTHS))


def row_line(r):
    return "  ".join(c.ljust(w) for c, w in zip(row_cells(r), WIDTHS))


def notes(meta, rows):
    """Lines after the table: the reference's drift, other processes' load, the run time."""
    out = []
    for name, unit, key in (("SGEMM", "GFLOP/s", "sgemm_gflops"), ("copy", "GB/s", "copy_gbps")):
        start, end = meta.get(key + "_start"), meta.get(key + "_end")
        if start and end:
            drift = end / start - 1
            out.append(f"{name} reference: {start:.1f} {unit} before the cases, {end:.1f} after "
                       f"({100 * drift:+.0f}%); 'of limit' uses the higher"
                       + ("; the two disagree: rerun for firmer fractions"
                          if abs(drift) > 0.1 else ""))
    if (meta.get("reference_other_load_cores") or 0) > BUSY:
        out.append("WARNING: other processes were busy while the references were measured")
    other = meta.get("other_load_cores")
    if other is not None:
        line = f"other processes kept {other:.2f} cores busy on average during the run"
        if other > BUSY:
            line = ("WARNING: " + line + "; the figures understate this machine "
                    "(rerun on an idle machine)")
        out.append(line)
    if any((r.get("other_load_cores") or 0) > BUSY for r in rows):
        out.append(f"rows marked *: other processes kept more than {BUSY} cores busy while the "
                   "row was timed")
    if meta.get("elapsed_s") is not None:
        out.append(f"run time {meta['elapsed_s']:.0f} s")
    return out


def markdown(meta, rows, summary_lines):
    out = [f"Machine: {meta['machine']}; threads {meta['threads']}; {meta['date']}; "
           f"convnet {meta['version']}; BLAS {meta.get('blas', '?')}; numpy {meta['numpy']}; "
           f"PyTorch {meta.get('torch') or 'not installed'}.", "",
           f"Reference rates measured in the same run: SGEMM {meta['sgemm_gflops']:.1f} GFLOP/s "
           f"({meta.get('sgemm_n', 2048)}^3 through convnet.ops.fc_forward, convnet's OpenBLAS), "
           f"copy {meta['copy_gbps']:.1f} GB/s (threaded copy, read + write).", "",
           "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    out += [""] + [s + "  " for s in summary_lines[:-1]] + summary_lines[-1:]
    return "\n".join(out) + "\n"


def write_json(path, meta, rows, summary):
    with open(path, "w") as f:
        json.dump({"meta": meta, "results": rows, "summary": summary}, f, indent=2)
