"""Studies: sweeps make the right runs, pipelines start a stage only after its parent finished,
a failed stage blocks its dependants with the reason, results equal the runs' stored metrics,
and a study goes on headless, started by its own workers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics

import pytest

from tests.conftest import wait_for
from workbench.engine.execute import execute
from workbench.errors import ConfigError
from workbench.jobs import Runner
from workbench.methods import make_config
from workbench.store import RunStatus, Store
from workbench.studies import (
    BUDGETS,
    TEMPLATES,
    Column,
    Stage,
    StudySpec,
    Table,
    advance,
    cancel_study,
    create_study,
    overview,
    parse_sweep,
    plan,
    results,
    resume_study,
    seed_means,
    sweep_spec,
    template_spec,
    tick,
    to_csv,
    to_markdown,
)
from workbench.studies import wait_for as wait_for_run

pytestmark = pytest.mark.backends  # on SQLite and on PostgreSQL

QUICK = {"max_steps": 2}


def quiet(store: Store, run_id: int) -> RunStatus:
    return execute(store, run_id, log=lambda _: None)


def test_a_2x1_sweep_makes_two_runs_with_the_right_configs(store: Store) -> None:
    spec = sweep_spec("vit", [("lr", [1e-3, 2e-3]), ("depth", [1])], budget="tiny", common=QUICK)
    study = create_study(store, spec)
    view = overview(store, study.id)
    runs = [view.run_of(m) for m in view.members]
    assert [r.status for r in runs] == ["queued", "queued"] and len(store.list_runs()) == 2
    for run, lr in zip(runs, (1e-3, 2e-3)):
        assert run.config == make_config("vit", "tiny", {"lr": lr, "depth": 1, **QUICK}).to_dict()
        assert run.tags == f"study:{study.id}" and run.name == f"{study.name} · vit lr={lr} depth=1"
    assert view.status == "running" and view.counts()["queued"] == 2


def test_a_pipeline_starts_its_second_stage_after_the_first_and_tables_its_metrics(store: Store) -> None:
    spec = sweep_spec("mae", [("mask_ratio", [0.5, 0.75])], follow_ups=("probe",), common=QUICK)
    study = create_study(store, spec)
    members = store.study_members(study.id)
    maes, probes = members[:2], members[2:]
    assert all(m.run_id for m in maes) and not any(m.run_id for m in probes)
    assert probes[0].note == f"waiting for its encoder, run {maes[0].run_id} (queued)"
    assert advance(store) == []  # nothing to start while the encoders have not trained

    assert quiet(store, maes[0].run_id) == RunStatus.FINISHED
    created = advance(store)
    assert len(created) == 1  # only the probe whose encoder has finished
    probe = store.get_run(created[0])
    assert store.parents(probe.id)["encoder"].id == maes[0].run_id
    assert probe.config["mode"] == "linear" and probe.config["width"] == 64  # inherited from its encoder
    assert store.study_members(study.id)[3].run_id is None

    quiet(store, maes[1].run_id)
    advance(store)
    for m in store.study_members(study.id)[2:]:
        assert quiet(store, m.run_id) == RunStatus.FINISHED
    view = overview(store, study.id)
    assert view.status == "finished" and view.progress() == 1.0
    table = results(view)
    assert table.header == ["mask_ratio", "mae val/loss", "linear probe top-1", "status"]
    members = store.study_members(study.id)
    for row, mae, probe in zip(table.rows, members[:2], members[2:]):
        assert row[1] == store.get_run(mae.run_id).summary["val/loss"]
        assert row[2] == store.get_run(probe.run_id).summary["val/top1"]
        assert row[3] == "finished"
    assert store.create_member_run(members[2].id, "finetune", {}, name="again", parents={}, tags="") is None
    for i, m in enumerate(members[2:]):  # distinct values pin each row to its own run
        store.update_run(m.run_id, summary={"val/top1": 0.5 + i / 10})
    assert [row[2] for row in results(overview(store, study.id)).rows] == [0.5, 0.6]
    parsed = list(csv.reader(io.StringIO(to_csv(table))))
    assert parsed[0] == table.header and [float(v) for v in parsed[1][:3]] == table.rows[0][:3]
    assert f"| 0.5 | {table.rows[0][1]:.4f} | {table.rows[0][2]:.4f} | finished |" in to_markdown(table)


def test_a_failed_first_stage_marks_the_second_not_started_with_the_reason(store: Store, tmp_path) -> None:
    from PIL import Image

    from workbench.data import registry

    for name in ("cat", "dog"):  # a registered folder deleted before the study runs: a real failure
        (tmp_path / "pets" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(tmp_path / "pets" / name / f"{i}.png")
    registry.register(store, "pets", "imagefolder", tmp_path / "pets")
    shutil.rmtree(tmp_path / "pets")
    gone = {**QUICK, "dataset": "pets", "batch_size": 4}
    spec = StudySpec([Stage("pretrain", "mae", gone),
                      Stage("probe", "finetune", {**gone, "mode": "linear"}, parents={"encoder": "pretrain"})])
    study = create_study(store, spec)
    first = store.study_members(study.id)[0]
    runner = Runner(store)
    assert wait_for_run(store, runner, first.run_id, timeout=120) == RunStatus.FAILED
    tick(store, runner, run_ended=True)
    second = store.study_members(study.id)[1]
    assert second.state == "blocked" and second.run_id is None
    assert second.note.startswith(f"not started: its encoder, run {first.run_id}, failed")
    assert "there is no folder at" in second.note and f"workbench resume {first.run_id}" in second.note
    view = overview(store, study.id)
    assert view.status == "stopped" and view.counts()["not started"] == 1
    assert results(view).rows[0][-1] == "pretrain: run %d failed" % first.run_id
    assert len(store.list_runs()) == 1  # the second stage never made a run


def test_bad_studies_are_refused_before_anything_is_written(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"stage mae \(mask_ratio=1.2\): 1.2 is outside the allowed range"):
        create_study(store, sweep_spec("mae", [parse_sweep("mae", "mask_ratio=0.5,1.2")]))
    with pytest.raises(ConfigError, match="patch size 5 does not divide image size 32"):
        create_study(store, template_spec("vit-pos-embed", common={"patch_size": 5}))
    with pytest.raises(ConfigError, match="no stage of this study has a field 'codebook_size'"):
        create_study(store, template_spec("vit-pos-embed", common={"codebook_size": 8}))
    with pytest.raises(ConfigError, match="a vit run is no encoder"):
        sweep_spec("vit", [("lr", [1e-3, 1e-2])], follow_ups=("probe",))
    with pytest.raises(ConfigError, match="at least two values"):
        parse_sweep("vit", "lr=0.1")
    with pytest.raises(ConfigError, match="'3.5' is not a whole number"):
        parse_sweep("vit", "depth=2:5:3")
    assert store.list_studies() == [] and store.list_runs() == []

    field, values = parse_sweep("vit", "lr=1e-4:1e-2:3:log")
    assert field == "lr" and values == pytest.approx([1e-4, 1e-3, 1e-2])
    assert parse_sweep("vit", "depth=2:6:3") == ("depth", [2, 4, 6])
    assert parse_sweep("mae", "mask_strategy=random,grid") == ("mask_strategy", ["random", "grid"])
    assert parse_sweep("vit", "device=cpu,cuda:0") == ("device", ["cpu", "cuda:0"])
    with pytest.raises(ConfigError, match="lr: is swept twice"):
        sweep_spec("vit", [("lr", [0.1, 0.2]), ("lr", [0.3, 0.4])])


@pytest.mark.one_backend
def test_every_template_plans_valid_runs_at_every_budget(store: Store) -> None:
    sizes = {"mae-mask-ratio": 13, "mae-mask-strategy": 6, "vit-pos-embed": 4, "mpp-targets": 8,
             "deit-distill": 4, "beit-mask-ratio": 8}
    assert set(sizes) == set(TEMPLATES) and list(BUDGETS) == ["tiny", "cpu", "paper"]
    for name, count in sizes.items():
        planned = {budget: plan(store, template_spec(name, budget)) for budget in BUDGETS}
        for budget, members in planned.items():
            assert len(members) == count, (name, budget)
            assert all(m["config"]["epochs"] >= 1 for m in members)
        # cpu: the tiny models, trained longer (the untrained encoder stays at its one step)
        assert [m["config"]["image_size"] for m in planned["cpu"]] == [m["config"]["image_size"]
                                                                      for m in planned["tiny"]]
        assert [m["config"]["width"] for m in planned["cpu"] if "width" in m["config"]] == [
            m["config"]["width"] for m in planned["tiny"] if "width" in m["config"]]
        longer = [c["config"]["epochs"] > t["config"]["epochs"] for c, t in zip(planned["cpu"], planned["tiny"])
                  if c["stage"] not in ("untrained", "tokenizer")]
        assert all(longer), name
    paper = plan(store, template_spec("beit-mask-ratio", "paper"))
    assert {m["config"]["image_size"] for m in paper} == {224}  # the BEiT runs take the tokenizer's size
    deit = plan(store, template_spec("deit-distill"))
    assert [m["config"].get("distill") for m in deit] == [None, "none", "hard", "soft"]
    assert deit[3]["config"]["alpha"] == 0.1 and deit[3]["parents"] == {"teacher": {"member": 0}}
    assert store.list_runs() == []


def test_the_cpu_budget_is_a_study_budget_on_the_tiny_preset(store: Store) -> None:
    spec = template_spec("vit-pos-embed", "cpu")
    assert (spec.budget, spec.start_preset) == ("cpu", "tiny")
    study = create_study(store, spec)
    assert study.budget == "cpu" and all(r.config["epochs"] == 30 for r in store.list_runs())
    with pytest.raises(ConfigError, match=r"unknown budget 'huge'; choose tiny \(.*\); cpu \(.*\); paper"):
        template_spec("vit-pos-embed", "huge")
    with pytest.raises(ConfigError, match="this study sets epochs itself"):  # cpu pins each stage's schedule
        create_study(store, template_spec("vit-pos-embed", "cpu", common={"epochs": 3}))
    cancel_study(store, study.id)


def test_cancel_and_resume_a_study(store: Store) -> None:
    study = create_study(store, sweep_spec("mae", [("mask_ratio", [0.5, 0.75])], follow_ups=("probe",),
                                           common=QUICK))
    first = store.study_members(study.id)[0].run_id
    cancelled = cancel_study(store, study.id)
    assert len(cancelled) == 2 and store.get_run(first).status == RunStatus.CANCELLED
    assert overview(store, study.id).status == "cancelled"
    assert advance(store) == []
    assert all(m.note == "not started: the study was cancelled" for m in store.study_members(study.id)[2:])

    resumed = resume_study(store, study.id)
    assert first in resumed and store.get_run(first).status == RunStatus.QUEUED
    assert overview(store, study.id).status == "running"
    assert store.study_members(study.id)[2].note.startswith("waiting for its encoder")

    cancel_study(store, study.id)
    store.delete_run(first)  # a member's run deleted: its dependant says so, and resume makes it again
    advance(store, study.id)
    assert overview(store, study.id).status == "cancelled"
    resume_study(store, study.id)
    remade = store.study_members(study.id)[0].run_id
    assert remade and remade != first and store.get_run(remade).status == RunStatus.QUEUED
    store.delete_study(study.id)
    again = create_study(store, template_spec("vit-pos-embed", common=QUICK))
    assert again.id == study.id + 1  # a study id (its runs' tag) is never reused



def test_a_study_goes_on_headless_one_run_at_a_time(cli, store: Store) -> None:
    done = cli("study", "sweep", "--method", "mae", "--preset", "tiny", "--vary", "mask_ratio=0.5,0.75",
               "--then", "probe", "--set", "max_steps=2", "--parallel", "1")
    assert done.returncode == 0, done.stderr
    study_id = int(done.stdout)
    # no runner polls from here on: each worker starts the study's next run as it ends
    wait_for(lambda: overview(store, study_id).status != "running", timeout=240, interval=0.5)
    view = overview(store, study_id)
    assert view.status == "finished", [(m.name, m.note) for m in view.members]
    runs = sorted((view.run_of(m) for m in view.members), key=lambda r: r.started_at)
    for before, after in zip(runs, runs[1:]):
        assert after.started_at >= before.finished_at - 0.5  # --parallel 1: never two at once
    maes, probes = view.members[:2], view.members[2:]
    for mae, probe in zip(maes, probes):
        assert view.run_of(probe).started_at >= view.run_of(mae).finished_at - 0.5

    shown = cli("study", "show", str(study_id), "--json")
    info = json.loads(shown.stdout)
    assert info["status"] == "finished" and len(info["members"]) == 4
    assert info["results"]["rows"][1][2] == view.run_of(probes[1]).summary["val/top1"]
    listed = cli("study", "list")
    assert f"{study_id}  sweep-{study_id}" in listed.stdout and "finished" in listed.stdout
    table = cli("study", "show", str(study_id), "--markdown").stdout
    assert table.startswith("| mask_ratio | mae val/loss | linear probe top-1 | status |")


def test_cli_refuses_a_bad_study_in_one_line(cli, store: Store) -> None:
    done = cli("study", "mae-mask-ratio", "--set", "patch_size=5")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "patch size 5 does not divide image size 32" in done.stderr
    # --budget cpu is taken and planned (refused here only for the patch size: nothing may train)
    done = cli("study", "deit-distill", "--budget", "cpu", "--seeds", "0", "1", "--set", "patch_size=5")
    assert done.returncode == 2 and "stage student (distill=none seed=0): patch size 5" in done.stderr
    assert "--budget" in cli("study", "deit-distill", "--budget", "huge").stderr
    assert "cpu:" in cli("study", "deit-distill", "--help").stdout
    assert "--seeds" in cli("study", "sweep", "--help").stdout
    assert store.list_studies() == []


def test_repeats_seed_whole_chains_and_tables_mean_and_sd(store: Store) -> None:
    members = plan(store, template_spec("mae-mask-ratio", seeds=[0, 1]))
    assert len(members) == 26  # 4 ratios x 2 seeds x (pretrain, probe, finetune) + a scratch ViT per seed
    for m in members:
        if m["stage"] in ("probe", "finetune"):
            encoder = members[m["parents"]["encoder"]["member"]]
            assert m["config"]["seed"] == encoder["config"]["seed"] == encoder["values"]["seed"]
    assert {(m["values"]["mask_ratio"], m["config"]["seed"]) for m in members if m["stage"] == "pretrain"} == {
        (r, s) for r in (0.25, 0.5, 0.75, 0.9) for s in (0, 1)}
    with pytest.raises(ConfigError, match="seeds must be distinct"):
        template_spec("vit-pos-embed", seeds=[1, 1])
    swept = plan(store, sweep_spec("mae", [("mask_ratio", [0.5, 0.75])], follow_ups=("probe",), seeds=[0, 1]))
    assert sorted((m["values"]["mask_ratio"], m["config"]["seed"]) for m in swept if m["stage"] == "mae") == [
        (0.5, 0), (0.5, 1), (0.75, 0), (0.75, 1)]  # a custom sweep too
    probes = [m for m in swept if m["stage"] == "probe"]
    assert len(probes) == 4 and all(m["config"]["seed"] == swept[m["parents"]["encoder"]["member"]]["config"]["seed"]
                                    for m in probes)
    with pytest.raises(ConfigError, match="seed is swept already"):
        sweep_spec("vit", [("seed", [0, 1])], seeds=[2, 3])

    table = Table(["mask_ratio", "seed", "top-1", "status"], [[0.5, 0, 0.25, "finished"], [0.5, 1, 0.35, "finished"],
                                                              [0.75, 0, 0.4, "finished"], [0.75, 1, "", "running"]],
                  ["mask_ratio", "seed"], ["top-1"], ["val/top1"], [""] * 4)
    means = seed_means(table)
    assert means.header == ["mask_ratio", "top-1", "seeds"]
    sd = statistics.stdev([0.25, 0.35])
    assert means.rows == [[0.5, f"{0.3:.4f} ± {sd:.4f}", "n=2"], [0.75, "0.4000", "n=2"]]
    assert seed_means(results(overview(store, create_study(store, template_spec("vit-pos-embed")).id))) is None


@pytest.mark.one_backend
def test_shared_stages_run_once_per_seed_and_each_chain_uses_its_own(store: Store) -> None:
    members = plan(store, template_spec("mae-mask-ratio", seeds=[0, 1, 2]))
    scratch = [(m["point"], m["values"], m["config"]["seed"], m["name"]) for m in members if m["stage"] == "scratch"]
    assert scratch == [(None, {"seed": s}, s, f"scratch seed={s}") for s in (0, 1, 2)]
    assert [m["stage"] for m in plan(store, template_spec("mae-mask-ratio"))].count("scratch") == 1  # no seeds
    for template, parent, child in (("deit-distill", "teacher", "student"),
                                    ("beit-mask-ratio", "tokenizer", "pretrain"),
                                    ("mpp-targets", "untrained", "untrained probe")):
        members = plan(store, template_spec(template, seeds=[0, 1, 2]))
        assert [m["config"]["seed"] for m in members if m["stage"] == parent] == [0, 1, 2], template
        children = [m for m in members if m["stage"] == child]
        assert len(children) == (3 if child == "untrained probe" else 9), template
        for m in children:  # each seed's chain learns from that seed's parent
            role = next(iter(m["parents"]))
            assert members[m["parents"][role]["member"]]["config"]["seed"] == m["config"]["seed"], template
    assert store.list_runs() == []


def test_a_reference_stage_is_a_row_of_its_own_in_its_columns_only(store: Store) -> None:
    spec = StudySpec([Stage("pretrain", "mae", QUICK, swept=True),
                      Stage("probe", "finetune", {**QUICK, "mode": "linear"}, parents={"encoder": "pretrain"}),
                      Stage("scratch", "vit", QUICK, reference="probe")],
                     ["mask_ratio"], [{"mask_ratio": 0.5}, {"mask_ratio": 0.75}],
                     [Column("probe", "val/top1", "top-1"), Column("pretrain", "val/loss", "MAE loss")])
    study = create_study(store, spec)
    while (queued := store.list_runs(status=RunStatus.QUEUED)):
        for run in queued:
            quiet(store, run.id)
        advance(store)
    view = overview(store, study.id)
    assert view.status == "finished" and len(view.members) == 5
    table = results(view)
    scratch = view.run_of(view.members[-1])
    assert table.reference == ["", "", "scratch"]
    assert table.rows[2] == ["scratch (vit)", scratch.summary["val/top1"], "", "finished"]  # not in the MAE column
    assert all(isinstance(row[1], float) and isinstance(row[2], float) for row in table.rows[:2])


def test_a_run_that_ends_starts_studies_waiting_on_it_as_an_existing_parent(store: Store) -> None:
    encoder = store.create_run("mae", make_config("mae", "tiny", QUICK).to_dict())
    study = create_study(store, sweep_spec("finetune", [("mode", ["linear", "full"])], parents={"encoder": encoder.id},
                                           common=QUICK))
    assert all(m.run_id is None and m.note == f"waiting for its encoder, run {encoder.id} (queued)"
               for m in store.study_members(study.id))
    assert quiet(store, encoder.id) == RunStatus.FINISHED
    started = tick(store, Runner(store), run_ended=True, reap=False)  # what the encoder's worker does as it ends
    members = store.study_members(study.id)
    assert sorted(started) == sorted(m.run_id for m in members)  # both queued and started (parallel 2)
    assert all(store.parents(m.run_id)["encoder"].id == encoder.id for m in members)
    cancel_study(store, study.id)
