"""Adding a method is adding one module: the plug-in in pixels_plugin.py, named in
WORKBENCH_METHODS, is listed by `workbench methods`, configured with its own field, and trains
through the one training loop in a real worker, with no other file of the workbench touched."""

import json

import pytest

from workbench.store import RunStatus, Store

PLUGIN = "tests.methods.pixels_plugin"


@pytest.fixture
def plugged(cli, monkeypatch):
    monkeypatch.setenv("WORKBENCH_METHODS", PLUGIN)
    return cli


def test_a_method_in_one_module_registers_lists_and_trains(plugged, store: Store) -> None:
    listed = plugged("methods", "--json")
    assert listed.returncode == 0, listed.stderr
    described = json.loads(listed.stdout)["pixels_plugin"]
    assert "raw pixels" in described["description"]
    assert "hidden" in [f["name"] for f in described["fields"]]

    done = plugged("train", "--method", "pixels_plugin", "--preset", "tiny", "--set", "max_steps=2", "hidden=16",
                   "eval_every=2", "--wait")
    assert done.returncode == 0, done.stderr
    run = store.get_run(int(done.stdout))
    assert run.status == RunStatus.FINISHED and run.method == "pixels_plugin" and run.config["hidden"] == 16
    assert [r[1] for r in store.metrics(run.id, key="train/loss")] == [2]  # two steps, through the one loop
    assert "val/top1" in run.summary


def test_an_unknown_plugin_is_left_out_with_the_reason(plugged, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_METHODS", "tests.methods.no_such_plugin")
    done = plugged("methods", "--json")
    assert done.returncode == 0 and "vit" in json.loads(done.stdout)  # the built-in methods still work
    assert "WORKBENCH_METHODS names 'tests.methods.no_such_plugin', left out: No module named" in done.stderr
