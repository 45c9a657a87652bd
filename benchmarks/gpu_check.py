"""The GPU path, measured on a CUDA machine: the CUDA-only tests, then notebook 04 itself executed with
papermill (the same code as on the CPU; ``aml.mlp.pick_device`` puts every tensor on the GPU) into a
run folder under ``--out``, and its answer line and timings printed. Without CUDA it says so and exits 0.

    AML_DATA_DIR=/path/to/data python benchmarks/gpu_check.py --out "$OUT"

The notebook's test evaluation appends a row to the run folder's copy of the ledger, never to the
committed one; record the figures in benchmarks/README.md and say there that it was one more look.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="a run folder for the notebook's outputs")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device; nothing to check")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_cuda.py"], cwd=ROOT, check=True)
    import papermill

    from aml.runs import seed_run_folder

    run = args.out / "gpu-run"
    seed_run_folder(run)
    (run / "notebooks").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    os.environ.update({"AML_OUTPUT_DIR": str(run), "AML_SMOKE": "0"})
    papermill.execute_notebook(ROOT / "notebooks" / "04_mlp_depth.ipynb", run / "notebooks" / "04_mlp_depth.ipynb",
                               cwd=run / "notebooks", kernel_name="python3", progress_bar=False)
    record = json.loads((run / "results" / "q4_best.json").read_text())
    print(f"notebook 04 on the GPU: {time.perf_counter() - start:.0f} s; depth {record['depth']}, validation "
          f"{record['val_acc_seeds']}, test {record['test_acc_full']:.4f}, training {record['train_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
