"""JointEntropy: keys, values equal to the estimators, state handling, DDP."""

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gan_je.estimators import (
    compare_samples,
    density_coverage,
    gaussian,
    jensen_shannon,
    precision_recall,
    sliced_jensen_shannon,
)
from gan_je.metrics import JointEntropy
from tests.samples import requires_cuda

KEYS = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd", "jsd_sliced"}


def batches(n_batches, batch, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(batch, 1, 2, 2, generator=gen) for _ in range(n_batches)]


def test_compute_returns_the_design_keys_as_0dim_tensors():
    metric = JointEntropy(max_samples=None)
    for real, fake in zip(batches(4, 64, 0), batches(4, 64, 1, scale=0.5), strict=True):
        metric.update(real, fake)
    out = metric.compute()
    assert set(out) >= KEYS
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())


def test_values_equal_the_functions_on_the_same_samples():
    reals, fakes = batches(3, 100, 2), batches(3, 80, 3, scale=0.6)
    metric = JointEntropy(max_samples=None, n_projections=4)
    for real, fake in zip(reals, fakes, strict=True):
        metric.update(real, fake)
    out = metric.compute()
    real, fake = torch.cat(reals).flatten(1), torch.cat(fakes).flatten(1)
    expected = compare_samples(real, fake)
    for key, value in expected.items():
        assert out[key].item() == pytest.approx(value.item(), abs=1e-9), key
    assert out["jsd"].item() == pytest.approx(jensen_shannon(real, fake).item(), abs=1e-9)
    sliced = sliced_jensen_shannon(real, fake, n_projections=4)
    assert out["jsd_sliced"].item() == pytest.approx(sliced.mean.item(), abs=1e-9)
    # with unequal sizes the label prior is (300/540, 240/540)
    pi = 300 / 540
    h_label = -(pi * math.log(pi) + (1 - pi) * math.log(1 - pi))
    assert out["joint_entropy"].item() == pytest.approx(
        h_label + pi * out["entropy_real"].item() + (1 - pi) * out["entropy_fake"].item()
    )


def test_reset_clears_and_replays_identically():
    metric = JointEntropy(max_samples=150)
    for real, fake in zip(batches(5, 50, 4), batches(5, 50, 5), strict=True):
        metric.update(real, fake)
    first = metric.compute()
    metric.reset()
    assert metric.real == [] and metric.fake == []
    for real, fake in zip(batches(5, 50, 4), batches(5, 50, 5), strict=True):
        metric.update(real, fake)
    second = metric.compute()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_max_samples_keeps_a_bounded_uniform_subset():
    metric = JointEntropy(max_samples=200)
    real_batches = [torch.full((50, 3), float(i)) + 0.01 * torch.randn(50, 3) for i in range(20)]
    for real in real_batches:
        metric.update(real, real + 100)
        assert sum(t.numel() for t in metric.real) <= 2 * 200 * 3
    metric.compute()
    kept, _ = metric._samples("real")
    assert kept.shape == (200, 3)
    # drawn from the whole stream, not just its start or end
    batch_ids = kept[:, 0].round().unique()
    assert len(batch_ids) >= 15


def test_features_are_applied_before_flattening():
    projection = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2, bias=False))
    metric = JointEntropy(features=projection, max_samples=None)
    real, fake = batches(1, 120, 6)[0], batches(1, 120, 7)[0]
    metric.update(real, fake)
    assert metric._samples("real")[0].shape == (120, 2)
    with torch.no_grad():
        expected = compare_samples(projection(real), projection(fake))
    assert metric.compute()["jsd"].item() == pytest.approx(expected["jsd"].item(), abs=1e-6)


def test_bad_arguments_and_updates():
    with pytest.raises(ValueError, match="k must be"):
        JointEntropy(k=0)
    with pytest.raises(ValueError, match="backend must be"):
        JointEntropy(backend="gpu")
    with pytest.raises(ValueError, match="max_samples"):
        JointEntropy(k=3, max_samples=3)
    with pytest.raises(ValueError, match="features must be callable"):
        JointEntropy(features=3)
    metric = JointEntropy()
    metric.update(torch.randn(10, 4), torch.randn(10, 4))
    with pytest.raises(ValueError, match="features per sample"):
        metric.update(torch.randn(10, 5), torch.randn(10, 5))
    with pytest.raises(ValueError, match="update\\(\\) it with more samples"):
        _compute_with(2)
    with pytest.raises(ValueError, match="0 real samples"), pytest.warns(UserWarning):
        JointEntropy().compute()  # torchmetrics also warns: compute before update


def _compute_with(n):
    metric = JointEntropy()
    metric.update(torch.randn(n, 4), torch.randn(n, 4))
    return metric.compute()


# ----------------------------------------------------------------------------- DDP

# uneven shards: rank 1 sees fewer real batches and no generated samples at all
SHARDS = {
    0: (batches(3, 70, 10), batches(2, 90, 11, scale=0.5)),
    1: (batches(1, 45, 12), []),
}


def _ddp_worker(rank, world_size, port, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        metric = JointEntropy(max_samples=None, n_projections=4)
        reals, fakes = SHARDS[rank]
        for real in reals:
            metric.update(real, real[:0])
        for fake in fakes:
            metric.update(fake[:0], fake)
        result = {k: v.item() for k, v in metric.compute().items()}
        torch.save(result, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_with_uneven_shards_equals_single_process(tmp_path):
    out = str(tmp_path / "result")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    single = JointEntropy(max_samples=None, n_projections=4)
    real = torch.cat(SHARDS[0][0] + SHARDS[1][0])
    fake = torch.cat(SHARDS[0][1] + SHARDS[1][1])
    single.update(real, fake)
    expected = {k: v.item() for k, v in single.compute().items()}
    for result in ranks:
        assert result == pytest.approx(expected, abs=1e-9)


@requires_cuda
def test_metric_on_cuda_matches_cpu():
    reals, fakes = batches(2, 500, 13), batches(2, 500, 14, scale=0.7)
    cpu, gpu = JointEntropy(max_samples=None), JointEntropy(max_samples=None).cuda()
    for real, fake in zip(reals, fakes, strict=True):
        cpu.update(real, fake)
        gpu.update(real.cuda(), fake.cuda())
    a, b = cpu.compute(), gpu.compute()
    for key in a:
        assert b[key].device.type == "cuda"
        assert b[key].item() == pytest.approx(a[key].item(), abs=1e-6), key


def test_joint_entropy_reports_sample_quality_next_to_the_entropies():
    generator = torch.Generator().manual_seed(5)
    real = torch.randn(400, 3, generator=generator)
    fake = 0.8 * torch.randn(300, 3, generator=generator) + 0.2
    metric = JointEntropy(max_samples=None, n_projections=2)
    metric.update(real, fake)
    values = metric.compute()
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert (values["precision"], values["recall"]) == (precision, recall)
    assert (values["density"], values["coverage"]) == (density, coverage)
    torch.testing.assert_close(values["frechet"], gaussian.frechet_distance(real, fake))
    plain = JointEntropy(quality=False, max_samples=None, n_projections=2)
    plain.update(real, fake)
    assert "precision" not in plain.compute()
