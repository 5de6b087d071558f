"""Bad input on the command line is never silently wrong and never a traceback: a home that is a
file or read-only, an unknown status or metric key (errors, exit 2, listing the valid ones), and
an empty but valid answer (said on stderr, exit 0). `main` runs in-process on a real store."""

from __future__ import annotations

import csv
import errno
import io
import os
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.store import RunStatus, Store


def _run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_a_home_that_is_a_file_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    monkeypatch.setenv("WORKBENCH_HOME", str(file))
    code, out, err = _run(capsys, "runs")
    assert code == 2 and out == ""
    assert f"WORKBENCH_HOME is {file}, which is a file, not a folder" in err and "point WORKBENCH_HOME at a folder you can" in err
    assert file.read_text() == "mine"


def _read_only(monkeypatch: pytest.MonkeyPatch, top: Path) -> None:
    """What a read-only mount does under `top` (tests run as root, where chmod stops no write):
    mkdir fails with EROFS and access(W_OK) says no, as the kernel answers there."""
    mkdir, access = os.mkdir, os.access

    def ro_mkdir(path, *args, **kwargs):
        if Path(path).is_relative_to(top):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return mkdir(path, *args, **kwargs)

    def ro_access(path, mode, *args, **kwargs):
        if mode & os.W_OK and Path(path).is_relative_to(top):
            return False
        return access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", ro_mkdir)
    monkeypatch.setattr(os, "access", ro_access)


def test_a_home_on_a_read_only_location_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    top = tmp_path / "cdrom"
    (top / "existing").mkdir(parents=True)
    _read_only(monkeypatch, top)
    monkeypatch.setenv("WORKBENCH_HOME", str(top / "new"))
    code, _, err = _run(capsys, "runs")
    assert code == 2 and f"cannot create the workbench home {top / 'new'}: Read-only file system" in err
    monkeypatch.setenv("WORKBENCH_HOME", str(top / "existing"))
    code, _, err = _run(capsys, "runs")
    assert code == 2 and f"the workbench home {top / 'existing'} cannot be written to (read-only" in err
    assert "point WORKBENCH_HOME at a folder you can write to" in err
    assert list((top / "existing").iterdir()) == [] and not (top / "new").exists()


def test_an_unknown_status_lists_the_valid_ones(store: Store, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["runs", "--status", "bogus"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "invalid choice: 'bogus'" in err
    assert all(status.value in err for status in RunStatus)


def test_empty_listings_say_so(store: Store, capsys) -> None:
    assert _run(capsys, "runs") == (0, "", "no runs yet; `workbench train` starts one\n")
    store.create_run("vit", {})
    code, out, err = _run(capsys, "runs", "--status", "failed")
    assert (code, out) == (0, "") and "no failed runs" in err
    code, out, err = _run(capsys, "runs", "--status", "queued")
    assert code == 0 and "vit-1" in out and err == ""


def test_metrics_of_a_run_without_any_say_so(store: Store, capsys) -> None:
    run = store.create_run("vit", {})
    assert _run(capsys, "metrics", str(run.id)) == (0, "", f"run {run.id} has no metrics yet (queued)\n")
    code, out, err = _run(capsys, "metrics", str(run.id), "--csv")
    assert code == 0 and out.splitlines() == ["step,epoch,key,value,wall_time"] and "no metrics yet" in err


def test_an_unknown_metric_key_lists_the_recorded_ones(store: Store, capsys) -> None:
    run = store.create_run("vit", {})
    store.add_metrics(run.id, [(1, 0.1, "train/loss", 2.0, 100.0), (1, 0.1, "val/top1", 0.5, 101.0)])
    code, out, err = _run(capsys, "metrics", str(run.id), "--key", "val/top")
    # still queued: the key may come later, so no error, but it says what there is
    assert (code, out) == (0, "") and "has recorded no 'val/top' yet (queued); so far: train/loss, val/top1" in err
    store.update_run(run.id, status=RunStatus.FINISHED)
    code, out, err = _run(capsys, "metrics", str(run.id), "--key", "bogus")
    assert (code, out) == (2, "")
    assert f"error: run {run.id} has no metric 'bogus'; the metrics it recorded: train/loss, val/top1" in err
    code, out, err = _run(capsys, "metrics", str(run.id), "--key", "val/top1", "--csv")
    assert code == 0 and err == ""
    assert [(r["key"], float(r["value"])) for r in csv.DictReader(io.StringIO(out))] == [("val/top1", 0.5)]
