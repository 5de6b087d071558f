"""The GPU and data benches run on a CPU too (a small geometry, the same JSON fields), so a change
that breaks them shows here rather than in a GPU session's scarce minutes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _run(tmp_path: Path, script: str, *args: str) -> dict:
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gpu_bench_runs_its_small_geometry_on_a_cpu_through_the_gpu_sessions_script(tmp_path: Path) -> None:
    """bench/gpu_session.sh, as a GPU session runs it (its cases cut to two, at the CPU's geometry)."""
    out = tmp_path / "out"
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home"), "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(BENCH / "gpu_session.sh"), "run", "--small", "--batch", "32", "--steps", "2",
                           "--cases", "vit", "vit_files_device", "--jpegs", "300"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "gpu.json").read_text())
    assert '"vit_files_device": {' in (out / "gpu.log").read_text()  # each case's line as it ends
    assert sys.version.split()[0] in (out / "env.txt").read_text()
    assert result["bench"] == "gpu" and result["preset"] == "tiny" and result["peak_source"] == "measured matmul"
    vit, files = result["vit"], result["vit_files_device"]
    assert "error" not in vit and "error" not in files, (vit, files)
    assert files["workbench_images_per_s"] > 0 and files["ratio"] > 0  # a run decoding a JPEG folder's bytes
    assert vit["workbench_images_per_s"] > 0 and vit["plain_images_per_s"] > 0
    assert vit["gflops_per_image"] > 0 and 0 < vit["plain_mfu"] < 1.5 and vit["ratio"] > 0
    assert 0 <= vit["data_wait"] < 1 and vit["plain_syncs_per_step"] == []  # no CUDA: nothing to wait for


def test_data_bench_reads_a_jpeg_folder_every_way_it_can_here(tmp_path: Path) -> None:
    result = _run(tmp_path, "data.py", "--images", "60", "--read", "32", "--batch", "16", "--workers", "0")
    for path in ("pil_w0", "decode_jpeg_cpu", "cache", "randaugment_w0"):
        assert result[path]["images_per_s"] > 0
    assert result["pil_w0"]["mean_abs_diff"] == 0 and result["cache"]["mean_abs_diff"] == 0  # the same decode
    assert result["decode_jpeg_cpu"]["mean_abs_diff"] < 3  # another JPEG decoder and resize: close, not equal
    assert result["cache_build_s"] > 0


def test_gui_scale_bench_measures_the_poll_and_the_curves_of_a_small_store(tmp_path: Path) -> None:
    result = _run(tmp_path, "gui_scale.py", "--runs", "60", "--rows", "30000", "--big", "5000", "--repeats", "1")
    assert result["bench"] == "gui_scale" and result["runs"] == 60 and "db_mb" in result and result["build_s"] >= 0
    for side in ("reference", "scale"):
        assert result[f"{side}_poll_ms"] > 0 and result[f"{side}_curves_ms"] > 0
        assert result[f"{side}_poll_ms"] == pytest.approx(result[f"{side}_poll_read_ms"] + result[f"{side}_poll_show_ms"],
                                                       abs=0.2)
        assert result[f"{side}_sorted_by_best_poll_show_ms"] > 0


def test_masks_bench_times_every_strategy(tmp_path: Path) -> None:
    result = _run(tmp_path, "masks.py", "--batch", "8", "--processes", "2", "--rounds", "1")
    for strategy in ("random", "block", "grid"):
        assert result[strategy]["ms_one_process"] > 0 and result[strategy]["ms_2_processes"] > 0
    assert result["block"]["vs_random"] > 0


def test_memory_bench_sets_the_cpu_memory_check_beside_what_steps_take(tmp_path: Path) -> None:
    result = _run(tmp_path, "memory.py", "--small", "--batch", "8", "--methods", "vit", "cnn")
    assert result["bench"] == "memory" and result["preset"] == "tiny"
    for method in ("vit", "cnn"):
        one = result[method]
        assert "error" not in one, one
        assert one["mib_per_image"] > 0 and one["bound_gib"] > 0 and one["measured_over_bound"] > 0
