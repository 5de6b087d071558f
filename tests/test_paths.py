"""The home folder: WORKBENCH_HOME wins; otherwise platformdirs' per-user data folder (XDG on
Linux)."""

from pathlib import Path

from workbench import paths


def test_the_home_is_the_users_data_folder_unless_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.home() == tmp_path / "xdg" / "vit-workbench" and paths.home().is_dir()
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "mine"))
    assert paths.home() == tmp_path / "mine"
    assert paths.run_dir(7, create=False) == tmp_path / "mine" / "runs" / "000007"
