"""benchmarks/gpu_throughput.py end to end on the CPU with tiny shapes (``--smoke``): the
synthetic and real-loader measurements, FLOPs, MFU and the BENCHMARKS.md section, so the
script works the first time a GPU is there."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_smoke_run_reports_every_variant_and_input(tiny_prepared_phantom: Path,
                                                   tmp_path: Path, capsys) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\nearlier numbers\n", encoding="utf-8")
    threads = torch.get_num_threads()
    try:
        assert _script().main(["--device", "cpu", "--smoke", "--manifest",
                               str(tiny_prepared_phantom), "--workers", "0",
                               "--peak-tflops", "1", "--write-benchmarks", str(target)]) == 0
    finally:
        torch.set_num_threads(threads)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nearlier numbers\n")  # appended, nothing lost
    assert "--smoke" in text and "bf16" in text
    rows = [line.split(" | ") for line in text.splitlines()
            if line.startswith(("| baseline", "| n_g_dtcg"))]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (v, i, b) for v in ("| baseline", "| n_g_dtcg")
        for i, b in (("synthetic", "4"), ("synthetic", "8"), ("loader, 0 workers", "4"))
    ]
    for row in rows:
        images_per_s, memory, gflop = float(row[4]), float(row[5]), float(row[6])
        assert images_per_s > 0 and memory > 0 and gflop > 0
        assert re.fullmatch(r"\d+\.\d %", row[8].rstrip(" |"))
    flops = {(r[0], r[2]): float(r[6]) for r in rows if r[1] == "synthetic"}
    assert flops[("| baseline", "8")] > 1.5 * flops[("| baseline", "4")]  # FLOPs scale with B
    assert flops[("| n_g_dtcg", "4")] > flops[("| baseline", "4")]  # twice the texts
    assert "written to" in capsys.readouterr().out


def test_peak_table_matches_device_names() -> None:
    module = _script()
    assert module.peak_tflops(torch.device("cpu"), None) is None
    assert module.peak_tflops(torch.device("cpu"), 2.5) == 2.5
    names = {"NVIDIA H200": 989.0, "NVIDIA H100 PCIe": 756.0, "NVIDIA A100-SXM4-80GB": 312.0}
    for name, peak in names.items():
        match = next(v for k, v in module.PEAK_TFLOPS.items()
                     if all(part in name for part in k.split()))
        assert match == peak
