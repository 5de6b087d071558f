"""DeiT end to end, in-process: a teacher run, then a distilled student whose stored report
agrees with its stored metrics."""

import json

import pytest

from workbench.engine.execute import execute
from workbench.jobs import create_run
from workbench.store import RunStatus, Store

pytestmark = pytest.mark.slow


def test_teacher_then_hard_distilled_student(store: Store) -> None:
    teacher = create_run(store, "cnn", preset="tiny", overrides=["max_steps=40", "eval_every=40"])
    assert execute(store, teacher.id, log=lambda _: None) == RunStatus.FINISHED
    student = create_run(store, "deit", preset="tiny", overrides=["max_steps=30", "eval_every=15"],
                         parents={"teacher": teacher.id})
    assert execute(store, student.id, log=lambda _: None) == RunStatus.FINISHED

    summary = store.get_run(student.id).summary
    assert summary["val/teacher_top1"] == pytest.approx(store.get_run(teacher.id).summary["val/top1"])
    report_art = store.latest_artifact(student.id, "report")
    report = json.loads(store.abspath(report_art).read_text())
    assert report["distill"] == "hard" and report_art.step == 30
    assert report["top1"]["avg"] == pytest.approx(summary["val/top1"])
    assert report["top1"]["teacher"] == pytest.approx(summary["val/teacher_top1"])
    assert report["agreement"] == pytest.approx(summary["val/agreement"])
    assert sum(map(sum, report["agreement_matrix"])) == 1000  # every validation image
    assert store.latest_artifact(student.id, "image", name="teacher_vs_student") is not None
