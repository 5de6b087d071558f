"""DeiT's claims at tiny scale: train a CNN teacher, then the same ViT student with hard,
soft and no distillation on the same budget. Prints one JSON line with every top-1 (the
teacher; each student's cls head, dist head and their average) and student-teacher agreement.

    python bench/deit_distill.py [--teacher-epochs 3] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json

from common import bench_store, train_tiny


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    store = bench_store()

    def run(method: str, overrides: list[str], parents: dict[str, int] | None = None) -> dict:
        run_id = train_tiny(store, method, overrides, parents)
        return {"id": run_id, **store.get_run(run_id).summary}

    teacher = run("cnn", [f"epochs={args.teacher_epochs}"])
    students = {kind: run("deit", [f"epochs={args.epochs}", f"distill={kind}", *(["alpha=0.1"] if kind == "soft" else [])],
                          {"teacher": teacher["id"]})
                for kind in ("hard", "soft", "none")}
    print(json.dumps({"bench": "deit_distill", "teacher_epochs": args.teacher_epochs, "epochs": args.epochs,
                      "teacher_top1": round(teacher["val/top1"], 4),
                      **{f"{kind}_{head}": round(s[f"val/{head}"], 4) for kind, s in students.items()
                         for head in ("top1", "top1_cls", "top1_dist", "agreement")},
                      "hard_vs_none": round(students["hard"]["val/top1"] / students["none"]["val/top1"], 3)}))


if __name__ == "__main__":
    main()
