"""Retrain the Q3b best configuration (from results/q3b_best.json) with other seeds and print the
validation accuracy of each, to show how much of the result is the seed.

    AML_DATA_DIR=../shared/data python benchmarks/q3b_reseed.py [--seeds 1]

Ends with ``spread=<max - min validation accuracy, in points>`` over the recorded run and the new ones.
"""
from __future__ import annotations

import argparse
import json

import aml
from aml.tuning import NetConfig, flip_averaged_accuracy, run_config
from aml.utils import REPO_ROOT, machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--results", default=str(REPO_ROOT / "results" / "q3b_best.json"))
    args = parser.parse_args()

    best = json.loads(open(args.results).read())
    config = NetConfig.from_dict(best["config"])
    data = aml.load_cifar10()
    flips = best.get("flip_averaged_predictions", False)
    accs = {config.seed: best["val_acc"]}
    print(f"{machine_info()['cpu']}, {machine_info()['date']}; predictions: {'flip-averaged' if flips else 'plain'}")
    print(f"seed {config.seed}: validation accuracy {best['val_acc']:.4f} (recorded in {args.results})")
    for seed in args.seeds:
        result = run_config(config.replace(seed=seed), data)
        X_val = result.preprocessor.transform(data.X_val)
        accs[seed] = flip_averaged_accuracy(result.model, X_val, data.y_val) if flips else result.val_acc
        print(f"seed {seed}: validation accuracy {accs[seed]:.4f} (plain {result.val_acc:.4f}, "
              f"{result.seconds:.0f} s)", flush=True)
    print(f"spread={100 * (max(accs.values()) - min(accs.values())):.1f}")


if __name__ == "__main__":
    main()
