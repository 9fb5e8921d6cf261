"""DDP with two gloo CPU processes (trainer=ddp_sim): identical weights on every rank, the
validation metric over all ranks' samples, and files written by rank 0 only."""

from __future__ import annotations

import json
from pathlib import Path

import lightning
import pytest
import torch

from gan_je.distributed import average_gradients
from gan_je.metrics import JointEntropy
from gan_je.parts import register
from gan_je.train import train


class DumpWeights(lightning.Callback):
    """Each rank saves its generator and discriminator weights at the end of training."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def on_train_end(self, trainer, pl_module) -> None:
        state = {
            key: value.detach().cpu()
            for key, value in pl_module.state_dict().items()
            if key.startswith(("generator.", "discriminator."))
        }
        torch.save(state, self.folder / f"weights{trainer.global_rank}.pt")


@register  # a part built from the config must be registered (gan_je.parts)
class RecordingJointEntropy(JointEntropy):
    """JointEntropy that saves, on every rank, the gathered samples it estimates from."""

    def __init__(self, folder: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.folder = Path(folder)

    def compute(self):
        result = super().compute()
        real, fake = self.real_and_fake()
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        torch.save({"real": real, "fake": fake, "result": result}, self.folder / f"val{rank}.pt")
        return result


@pytest.mark.slow
def test_ddp_sim_trains_two_processes_as_one(train_config, tmp_path):
    overrides = [
        "experiment=ring",
        "data.n_train=2048",
        "data.n_val=301",  # odd: the ranks hold different numbers of samples
        "trainer=ddp_sim",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "logger=csv",
        "callbacks=none",
        "trainer.enable_progress_bar=false",
        f"+callbacks.dump={{_target_:{__name__}.DumpWeights,folder:'{tmp_path}'}}",
        f"estimator._target_={__name__}.RecordingJointEntropy",
        f"+estimator.folder='{tmp_path}'",
    ]
    cfg = train_config(*overrides)
    summary = train(cfg)
    assert summary["status"] == "finished" and summary["g_steps"] == 3

    # the same generator and discriminator weights on both ranks after 3 steps
    rank0, rank1 = (torch.load(tmp_path / f"weights{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys() and any(k.startswith("generator.") for k in rank0)
    for key in rank0:
        torch.testing.assert_close(rank0[key], rank1[key], rtol=0, atol=0, msg=key)

    # the metric saw every validation sample once and equals one process on those samples
    val0, val1 = (torch.load(tmp_path / f"val{r}.pt") for r in (0, 1))
    assert val0["real"].shape[0] == 301
    torch.testing.assert_close(val0["real"], val1["real"])
    single = JointEntropy(max_samples=None)
    single.update(val0["real"], real=True)
    single.update(val0["fake"], real=False)
    expected = single.compute()
    for key in ("jsd", "entropy_fake", "entropy_real"):
        assert summary["final"][f"val/{key}"] == pytest.approx(float(expected[key]), abs=1e-9)

    # rank 0 alone wrote the run record and the CSV log
    run = Path(cfg.paths.output_dir)
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    assert len(list(run.rglob("metrics.csv"))) == 2  # the run record's and the CSV logger's
    assert len(list((run / "csv").glob("version_*"))) == 1


def test_average_gradients_outside_a_process_group_leaves_them_alone():
    weight = torch.nn.Parameter(torch.ones(3))
    weight.grad = torch.arange(3.0)
    average_gradients([weight])
    torch.testing.assert_close(weight.grad, torch.arange(3.0))
