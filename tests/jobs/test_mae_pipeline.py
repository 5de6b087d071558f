"""MAE end to end: pre-train through the CLI in a worker, watch the loss fall and the
reconstructions appear, then linearly probe the encoder."""

import numpy as np
import pytest
from PIL import Image

from workbench.draw import GRID_SIDE, HEADER_PX
from workbench.engine.execute import execute
from workbench.jobs import create_run
from workbench.store import RunStatus, Store
from workbench.studies import FOLLOW_UPS

pytestmark = pytest.mark.slow


def test_tiny_mae_learns_to_reconstruct_and_its_encoder_can_be_probed(cli, store: Store) -> None:
    done = cli("train", "--method", "mae", "--preset", "tiny", "--set", "epochs=4", "--wait")
    assert done.returncode == 0, done.stderr
    mae = int(done.stdout)
    losses = [value for _, _, _, _, value, _ in store.metrics(mae, key="train/loss")]
    assert losses[-1] < 0.6 * losses[0], f"masked-patch MSE went {losses[0]:.3f} -> {losses[-1]:.3f}"

    snapshots = store.artifacts(mae, "image", name="reconstructions")
    assert [a.step for a in snapshots] == [78, 156, 234, 312]
    first, last = (np.asarray(Image.open(store.abspath(a)).convert("RGB"), dtype=float) for a in
                   (snapshots[0], snapshots[-1]))
    # columns: original | masked input | reconstruction | recon + visible, GRID_SIDE px tiles under a header
    def column(img: np.ndarray, c: int) -> np.ndarray:
        return img[HEADER_PX:, 2 + c * (GRID_SIDE + 2):2 + c * (GRID_SIDE + 2) + GRID_SIDE]
    error_first = np.abs(column(first, 2) - column(first, 0)).mean()
    error_last = np.abs(column(last, 2) - column(last, 0)).mean()
    assert error_last < error_first  # the reconstructions got closer to the originals
    assert error_last < 0.5 * np.abs(column(last, 1) - column(last, 0)).mean()  # and beat the grey input

    # the studies' probe recipe (5 epochs, lr 0.01, no weight decay): 2 epochs at the preset's lr
    # scored 0.14, too near chance to tell a learned encoder
    probe = create_run(store, "finetune", preset="tiny", overrides=FOLLOW_UPS["probe"]["tiny"],
                       parents={"encoder": mae})
    assert probe.config["width"] == 64
    assert execute(store, probe.id) == RunStatus.FINISHED
    assert store.get_run(probe.id).summary["val/top1"] > 0.15  # chance is 0.10
