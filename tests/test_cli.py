import csv
import io
import json

import pytest

from workbench.engine.execute import execute
from workbench.jobs import create_run
from workbench.store import Store


@pytest.mark.parametrize("args, words", [
    (["--set", "patch_size=5"], "patch_size: patch size 5 does not divide image size 32"),
    (["--set", "width=64", "heads=5"], "heads: 5 heads do not divide width 64"),
    (["--set", "lr=-1"], "lr: -1.0 is outside the allowed range"),
    (["--set", "colour=red"], "colour: unknown field for method vit"),
    (["--parent", "teacher=1"], "there is no run 1"),
    (["--parent", "teacher"], "--parent takes ROLE=RUN_ID"),
    (["--set", "dataset=imagenet"], "dataset: unknown dataset 'imagenet'"),
])
def test_bad_train_requests_are_refused_and_write_nothing(cli, store: Store, args: list[str], words: str) -> None:
    done = cli("train", "--method", "vit", "--preset", "tiny", *args)
    assert done.returncode == 2
    assert words in done.stderr and done.stdout == ""
    assert store.list_runs() == []


def test_unknown_method_and_parent_role(cli, store: Store) -> None:
    done = cli("train", "--method", "mae2")
    assert done.returncode == 2 and "unknown method 'mae2'" in done.stderr
    parent = create_run(store, "vit")
    done = cli("train", "--method", "vit", "--parent", f"teacher={parent.id}")
    assert done.returncode == 2 and "takes no 'teacher' parent" in done.stderr
    assert len(store.list_runs()) == 1


def test_runs_show_and_metrics_of_a_finished_run(cli, store: Store) -> None:
    run = create_run(store, "vit", preset="tiny", overrides=["max_steps=20", "eval_every=10"], name="tiny one")
    assert execute(store, run.id) == "finished"

    listed = json.loads(cli("runs", "--json").stdout)
    assert [(r["id"], r["name"], r["status"]) for r in listed] == [(run.id, "tiny one", "finished")]
    table = cli("runs").stdout.splitlines()
    assert table[0].split()[:4] == ["ID", "NAME", "METHOD", "STATUS"] and "val/top1=" in table[1]

    shown = json.loads(cli("show", str(run.id), "--json").stdout)
    assert shown["config"]["max_steps"] == 20 and shown["last_metrics"]["val/top1"]["step"] == 20
    kinds = {a["kind"] for a in shown["artifacts"]}
    assert kinds == {"checkpoint", "best", "image", "report"}  # the report: the classifier's diagnostics
    assert shown["diagnostics"]["n"] == 1000
    assert all(a["path"].startswith(str(store.home)) for a in shown["artifacts"])
    assert shown["summary"]["params"] == store.get_run(run.id).summary["params"] > 0  # a count: an int
    assert isinstance(shown["summary"]["params"], int) and shown["trashed_at"] is None
    text = cli("show", str(run.id)).stdout
    assert "config:" in text and "in the Trash" not in text

    rows = list(csv.DictReader(io.StringIO(cli("metrics", str(run.id), "--key", "val/top1", "--csv").stdout)))
    assert [int(r["step"]) for r in rows] == [10, 20]
    assert float(rows[-1]["value"]) == pytest.approx(store.get_run(run.id).summary["val/top1"])
    assert cli("show", "77").returncode == 2
    assert cli("delete", str(run.id)).returncode == 0
    assert "in the Trash since " in cli("show", str(run.id)).stdout  # said, with how to bring it back


def test_methods_lists_fields_with_help_and_ranges(cli) -> None:
    described = json.loads(cli("methods", "--json").stdout)
    fields = {f["name"]: f for f in described["vit"]["fields"]}
    assert fields["pos_embed"]["choices"] == ["learned-1d", "learned-2d", "sincos-2d", "none"]
    assert fields["lr"]["min"] > 0 and fields["patch_size"]["help"]
    assert described["vit"]["presets"]["tiny"]["width"] == 64


def test_delete_goes_to_the_trash_and_for_good_only_when_confirmed(cli, store: Store) -> None:
    from tests.conftest import finished_run
    from workbench import paths

    teacher, student = finished_run(store, "cnn"), finished_run(store, "vit")
    store.update_run(student, status="queued")
    done = cli("delete", str(teacher), str(student))
    assert done.returncode == 2 and f"run {student} is still queued or running" in done.stderr
    assert store.list_runs(trashed=True) == []  # a refused request moves nothing
    store.update_run(student, status="finished")
    assert cli("delete", str(teacher)).returncode == 0
    assert [r.id for r in store.list_runs(trashed=True)] == [teacher] and paths.run_dir(teacher).exists()
    assert str(teacher) in cli("trash").stdout
    assert cli("restore", str(teacher)).returncode == 0 and store.list_runs(trashed=True) == []
    refused = cli("delete", str(teacher), "--for-good")  # no terminal: never without --yes
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert store.get_run(teacher) and paths.run_dir(teacher, create=False).exists()
    assert cli("delete", str(teacher), "--for-good", "--yes").returncode == 0
    assert [r.id for r in store.list_runs()] == [student] and not paths.run_dir(teacher, create=False).exists()
    parent = finished_run(store, "mae")
    child = store.create_run("finetune", {}, parents={"encoder": parent}).id
    lone = finished_run(store, "vit")
    assert cli("delete", str(parent), str(lone)).returncode == 0
    kept = cli("delete", str(parent), "--for-good", "--yes")  # named, but a run outside the Trash needs it
    assert kept.returncode == 2 and f"run {parent} stays in the Trash: run {child} was trained from it" in kept.stderr
    emptied = cli("trash", "--empty", "--yes")  # what can go goes; the parent stays, said
    assert emptied.returncode == 0 and f"run {parent} stays in the Trash" in emptied.stderr, emptied.stderr
    assert f"run(s) {lone} deleted for good" in emptied.stderr
    assert [r.id for r in store.list_runs(trashed=True)] == [parent]


def test_a_run_is_renamed(cli, store: Store) -> None:
    run = store.create_run("vit", {})
    done = cli("rename", str(run.id), "vit,", "2-D", "positions")
    assert done.returncode == 0 and done.stdout.strip() == "vit, 2-D positions" == store.get_run(run.id).name
    empty = cli("rename", str(run.id), " ")
    assert empty.returncode == 2 and "cannot be empty" in empty.stderr
    long = cli("rename", str(run.id), "x" * 201)
    assert long.returncode == 2 and "at most 200 characters; this one has 201" in long.stderr
    assert store.get_run(run.id).name == "vit, 2-D positions"
    missing = cli("rename", "999", "x")
    assert missing.returncode == 2 and "there is no run 999" in missing.stderr


def test_tags_are_added_and_removed(cli, store: Store) -> None:
    run = store.create_run("vit", {}, tags="draft lr-sweep")
    done = cli("tag", str(run.id), "+baseline", "-draft", "+lr-sweep")
    assert done.returncode == 0 and done.stdout.split() == ["lr-sweep", "baseline"]
    assert store.get_run(run.id).tags == "lr-sweep baseline"
    bad = cli("tag", str(run.id), "baseline")
    assert bad.returncode == 2 and "+TAG or -TAG" in bad.stderr


def test_several_queued_runs_are_cancelled_in_one_command_and_restore_says_what_it_left(cli, store: Store) -> None:
    from tests.conftest import finished_run

    a, b = store.create_run("vit", {}).id, store.create_run("vit", {}).id
    done = cli("cancel", str(a), str(b))
    assert done.returncode == 0 and f"run {a} cancelled" in done.stderr and f"run {b} cancelled" in done.stderr
    assert {store.get_run(i).status for i in (a, b)} == {"cancelled"}
    kept = finished_run(store, "vit")
    told = cli("restore", str(kept))
    assert told.returncode == 0 and f"run(s) {kept} left as they are: not in the Trash" in told.stderr


def test_the_hosts_limit_is_one_setting_for_every_scheduler(cli, store: Store) -> None:
    assert cli("limit").stdout.strip() == "2"
    assert cli("limit", "1").stdout.strip() == "1" and store.max_concurrent() == 1
    assert cli("limit", "0").returncode == 2


def test_archive_and_unarchive(cli, store: Store) -> None:
    from tests.conftest import finished_run

    ended, queued = finished_run(store, "vit"), store.create_run("vit", {}).id
    done = cli("archive", str(ended), str(queued))
    assert done.returncode == 0 and f"run(s) {ended} archived" in done.stderr
    assert f"run(s) {queued} left as they are: queued, running" in done.stderr
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [queued]
    archived = json.loads(cli("runs", "--archived", "--json").stdout)
    assert [r["id"] for r in archived] == [ended] and archived[0]["archived_at"]
    assert cli("unarchive", str(ended)).returncode == 0
    assert [r["id"] for r in json.loads(cli("runs", "--json").stdout)] == [ended, queued]
    missing = cli("archive", "99")
    assert missing.returncode != 0 and "99" in missing.stderr
