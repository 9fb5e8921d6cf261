"""The real-vs-generated metrics: keys, values equal to the estimators, the update(samples,
real) API and its errors, keeping the real samples across reset, DDP."""

import doctest
import math
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import gan_je.metrics
from gan_je.estimators import (
    compare_samples,
    density_coverage,
    gaussian,
    jensen_shannon,
    precision_recall,
    sliced_jensen_shannon,
)
from gan_je.extras import MissingExtraError
from gan_je.metrics import GaussianJointEntropy, InceptionJointEntropy, JointEntropy
from tests.samples import requires_cuda

KEYS = {"entropy_real", "entropy_fake", "entropy_mixture", "joint_entropy", "jsd", "jsd_sliced"}


def batches(n_batches, batch, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(batch, 1, 2, 2, generator=gen) for _ in range(n_batches)]


def feed(metric, reals, fakes):
    for real in reals:
        metric.update(real, real=True)
    for fake in fakes:
        metric.update(fake, real=False)
    return metric


def values(result):
    return {key: value.item() for key, value in result.items()}


def test_compute_returns_the_design_keys_as_0dim_tensors():
    metric = feed(JointEntropy(max_samples=None), batches(4, 64, 0), batches(4, 64, 1, 0.5))
    out = metric.compute()
    assert set(out) >= KEYS
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())


def test_values_equal_the_functions_on_the_same_samples():
    reals, fakes = batches(3, 100, 2), batches(3, 80, 3, scale=0.6)
    metric = JointEntropy(max_samples=None, n_projections=4)
    for real, fake in zip(reals, fakes, strict=True):  # the sources interleaved
        metric.update(fake, real=False)
        metric.update(real, real=True)
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


def test_gaussian_values_equal_the_plug_in_functions():
    reals, fakes = batches(2, 150, 30), batches(2, 120, 31, scale=0.5)
    out = feed(GaussianJointEntropy(max_samples=None), reals, fakes).compute()
    real, fake = torch.cat(reals).flatten(1).double(), torch.cat(fakes).flatten(1).double()
    for key, value in gaussian.compare_samples(real, fake).items():
        assert out[key].item() == pytest.approx(value.item(), abs=1e-9), key
    torch.testing.assert_close(out["frechet"], gaussian.frechet_distance(real, fake))


def test_reset_clears_and_replays_identically():
    metric = JointEntropy(max_samples=150)
    first = feed(metric, batches(5, 50, 4), batches(5, 50, 5)).compute()
    metric.reset()
    assert metric.real == [] and metric.fake == []
    second = feed(metric, batches(5, 50, 4), batches(5, 50, 5)).compute()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_max_samples_keeps_a_bounded_uniform_subset():
    metric = JointEntropy(max_samples=200)
    real_batches = [torch.full((50, 3), float(i)) + 0.01 * torch.randn(50, 3) for i in range(20)]
    for real in real_batches:
        metric.update(real, real=True)
        metric.update(real + 100, real=False)
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
    feed(metric, [real], [fake])
    assert metric._samples("real")[0].shape == (120, 2)
    with torch.no_grad():
        expected = compare_samples(projection(real), projection(fake))
    assert metric.compute()["jsd"].item() == pytest.approx(expected["jsd"].item(), abs=1e-6)


def test_update_featurises_each_batch_once_and_kept_real_samples_never_again():
    calls = []

    def features(x):
        calls.append(x.shape[0])
        return x.flatten(1)[:, :2]

    metric = JointEntropy(features=features, reset_real_features=False, n_projections=2)
    real, fake = batches(1, 100, 8)[0], batches(1, 80, 9)[0]
    metric.update(real, real=True)
    assert calls == [100]
    metric.update(fake[:0], real=False)  # an empty batch is not featurised
    assert calls == [100]
    metric.update(fake, real=False)
    metric.compute()
    metric.reset()
    metric.update(fake[:60], real=False)
    metric.compute()
    assert calls == [100, 80, 60]


def test_bad_arguments_and_updates():
    with pytest.raises(ValueError, match="k must be"):
        JointEntropy(k=0)
    with pytest.raises(ValueError, match="backend must be"):
        JointEntropy(backend="gpu")
    with pytest.raises(ValueError, match="max_samples"):
        JointEntropy(k=3, max_samples=3)
    with pytest.raises(ValueError, match="features must be callable"):
        JointEntropy(features=3)
    with pytest.raises(ValueError, match="reset_real_features must be True or False"):
        JointEntropy(reset_real_features="no")
    with pytest.raises(ValueError, match="reset_real_features must be True or False"):
        GaussianJointEntropy(reset_real_features=0)
    metric = JointEntropy()
    metric.update(torch.randn(10, 4), real=True)
    with pytest.raises(ValueError, match="fake batch has 5 features per sample"):
        metric.update(torch.randn(10, 5), real=False)
    with pytest.raises(ValueError, match="update\\(\\) it with more samples"):
        _compute_with(3)
    with pytest.raises(ValueError, match="0 real samples"), pytest.warns(UserWarning):
        JointEntropy().compute()  # torchmetrics also warns: compute before update


def _compute_with(n):
    metric = JointEntropy()
    feed(metric, [torch.randn(n, 4)], [torch.randn(n, 4)])
    return metric.compute()


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ([[0.0, 1.0], [2.0, 3.0]], "must be a torch.Tensor of shape \\(B, ...\\), got list"),
        (torch.randn(10), "got shape \\(10,\\); pass B scalars as \\(B, 1\\), e.g. x\\[:, None\\]"),
        (torch.tensor(1.0), "got shape \\(\\)"),
        (torch.randn(10, 2, dtype=torch.complex64), "complex64; pass torch.view_as_real"),
    ],
)
def test_update_rejects_bad_samples_and_says_what_to_pass(samples, message):
    metric = JointEntropy()
    with pytest.raises(ValueError, match=message):
        metric.update(samples, real=True)
    assert metric.real == []


@pytest.mark.parametrize("real", [1, None, "real", torch.tensor(True)])
def test_update_needs_real_as_a_bool(real):
    metric = JointEntropy()
    with pytest.raises(ValueError, match="real must be True \\(real samples\\) or False"):
        metric.update(torch.randn(10, 2), real)
    assert metric.real == [] and metric.fake == []


def test_an_empty_batch_is_ignored():
    metric = JointEntropy(max_samples=None)
    metric.update(torch.randn(0, 7), real=True)
    metric.update(torch.randn(0, 1, 5), real=False)
    assert metric.real == [] and metric.fake == [] and int(metric.n_features) == 0
    metric.update(torch.randn(20, 3), real=True)  # the empty batches fixed no width
    assert metric._samples("real")[0].shape == (20, 3)


def test_features_must_return_one_row_per_sample():
    metric = JointEntropy(features=lambda x: x.sum(1))
    with pytest.raises(ValueError, match=r"features must map a batch of 10 samples.*got \(10,\)"):
        metric.update(torch.randn(10, 3), real=True)


def test_forward_says_to_update_and_compute():
    with pytest.raises(RuntimeError, match="call update\\(samples, real=True/False\\)"):
        JointEntropy()(torch.randn(10, 2), real=True)


# ------------------------------------------------------------- keeping the real side


def test_reset_keeps_the_real_samples_only_when_asked():
    real, fake = torch.randn(50, 4), torch.randn(40, 4)
    kept = feed(JointEntropy(reset_real_features=False), [real], [fake])
    dropped = feed(JointEntropy(), [real], [fake])
    for metric in (kept, dropped):
        metric.reset()
        assert metric._samples("fake")[0].shape[0] == 0
    torch.testing.assert_close(kept._samples("real")[0], real, rtol=0, atol=0)
    assert dropped._samples("real")[0].shape[0] == 0
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="0 fake samples"):
        kept.compute()
    # the kept samples still fix the width
    with pytest.raises(ValueError, match="earlier batches had 4"):
        kept.update(torch.randn(40, 5), real=False)
    dropped.update(torch.randn(40, 5), real=False)


@pytest.mark.parametrize("cls", [JointEntropy, GaussianJointEntropy])
def test_kept_real_samples_and_new_fakes_equal_a_fresh_metric(cls):
    # max_samples binds on both sides, so this checks the subsampling too
    reals, fakes, next_fakes = batches(5, 50, 20), batches(3, 60, 21, 0.5), batches(4, 45, 22)
    kept = feed(cls(max_samples=80, n_projections=4, reset_real_features=False), reals, fakes)
    first = kept.compute()
    kept.reset()
    second = feed(kept, [], next_fakes).compute()
    fresh = feed(cls(max_samples=80, n_projections=4), [], next_fakes)
    feed(fresh, reals, [])  # the other order: each source's subset depends on its own batches
    expected = fresh.compute()
    assert set(second) == set(expected)
    for key in expected:
        assert torch.equal(second[key], expected[key]), key
    # the same real samples, other generated ones
    assert first["entropy_real"].item() == pytest.approx(second["entropy_real"].item(), abs=1e-9)
    assert first["entropy_fake"].item() != pytest.approx(second["entropy_fake"].item(), abs=1e-3)


def test_reset_all_forgets_the_kept_real_samples_and_replays_identically():
    metric = JointEntropy(max_samples=80, n_projections=2, reset_real_features=False)
    first = feed(metric, batches(4, 50, 26), batches(2, 60, 27)).compute()
    metric.reset_all()
    assert metric.real == [] and metric.fake == [] and int(metric.n_features) == 0
    assert metric.reset_real_features is False
    second = feed(metric, batches(4, 50, 26), batches(2, 60, 27)).compute()
    assert all(torch.equal(first[key], second[key]) for key in first)
    metric.reset()  # and the next reset keeps the real samples again
    assert metric._samples("real")[0].shape == (80, 4)


def test_real_batches_after_a_kept_reset_extend_the_same_stream():
    reals, fakes, next_fakes = batches(6, 50, 23), batches(2, 60, 24), batches(2, 60, 25)
    kept = feed(
        JointEntropy(max_samples=80, n_projections=2, reset_real_features=False), reals[:3], fakes
    )
    kept.compute()
    kept.reset()
    feed(kept, reals[3:], next_fakes)
    fresh = feed(JointEntropy(max_samples=80, n_projections=2), reals, next_fakes)
    a, b = kept.compute(), fresh.compute()
    assert all(torch.equal(a[key], b[key]) for key in b)


# ------------------------------------------------------------- Inception (FID, KID)


class _RecordingDistance:
    """Stands in for torchmetrics' FID (which needs torch-fidelity): records its calls."""

    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.resets = kwargs, [], []
        self.reset_real_features = kwargs["reset_real_features"]

    def update(self, imgs, real):
        self.updates.append((imgs.clone(), real))

    def compute(self):
        return torch.tensor(float(len(self.updates)))

    def reset(self):
        self.resets.append(self.reset_real_features)


class _RecordingKID(_RecordingDistance):
    def compute(self):
        return torch.tensor(float(len(self.updates))), torch.tensor(0.0)


def test_inception_metric_passes_images_and_reset_real_features_on(monkeypatch):
    monkeypatch.setattr("torchmetrics.image.fid.FrechetInceptionDistance", _RecordingDistance)
    monkeypatch.setattr("torchmetrics.image.kid.KernelInceptionDistance", _RecordingKID)
    extractor = torch.nn.Flatten()
    metric = InceptionJointEntropy(
        kid_subset_size=10,
        reset_real_features=False,
        max_samples=None,
        n_projections=2,
        feature_extractor=extractor,
    )
    assert metric.fid.kwargs["feature"] is metric.kid.kwargs["feature"] is extractor
    assert metric.fid.kwargs["reset_real_features"] is False
    assert metric.kid.kwargs["reset_real_features"] is False
    assert metric.kid.kwargs["subset_size"] == 10
    images = torch.rand(20, 1, 4, 4) * 2 - 1
    metric.update(images, real=True)
    ((rgb, real),) = metric.fid.updates
    assert real is True and rgb.shape == (20, 3, 4, 4)
    torch.testing.assert_close(rgb[:, 2], (images[:, 0] + 1) / 2)
    metric.update(images[:0], real=False)  # empty: nothing passed on
    with pytest.raises(ValueError, match="\\(B, 1 or 3, H, W\\), got shape \\(20, 2, 4, 4\\)"):
        metric.update(torch.rand(20, 2, 4, 4), real=False)
    assert metric.fake == [] and len(metric.kid.updates) == 1  # rejected before storing
    metric.update(images.flip(0), real=False)
    assert [is_real for _, is_real in metric.kid.updates] == [True, False]
    out = metric.compute()
    assert (out["fid"].item(), out["kid"].item()) == (2.0, 2.0)
    assert set(out) >= KEYS
    metric.reset()
    assert metric._samples("real")[0].shape == (20, 16) and metric.fake == []
    metric.reset_all()  # FID and KID forget their real features too, this once
    assert metric.real == [] and metric.reset_real_features is False
    assert metric.fid.resets == metric.kid.resets == [False, True]
    assert metric.fid.reset_real_features is metric.kid.reset_real_features is False


class _MeanColour(torch.nn.Module):
    """A stand-in for Inception-v3: each image's mean R, G, B and their spread."""

    num_features = 4

    def forward(self, images):
        colours = images.float().mean(dim=(2, 3))
        return torch.cat([colours, images.float().std(dim=(1, 2, 3))[:, None]], dim=1)


def test_inception_metric_computes_fid_and_kid_with_a_stand_in_extractor():
    # torchmetrics' own FID and KID, on features of a stand-in network (no torch-fidelity)
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(200, 3, 4, 4, generator=generator) * 2 - 1
    same = torch.rand(200, 3, 4, 4, generator=generator) * 2 - 1
    darker = same * 0.5 - 0.5
    values = {}
    for name, fake in (("same", same), ("darker", darker)):
        metric = InceptionJointEntropy(
            kid_subset_size=50, feature_extractor=_MeanColour(), quality=False, n_projections=2
        )
        metric.update(real, real=True)
        metric.update(fake, real=False)
        values[name] = metric.compute()
    # the darker set's mean colour moves by 0.25 in each of 3 channels (in [0, 1] units)
    assert values["same"]["fid"] < 0.01 < 3 * 0.25**2 * 0.8 < values["darker"]["fid"]
    assert abs(values["same"]["kid"]) < 0.01 < values["darker"]["kid"]


def test_inception_metric_without_torch_fidelity_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'gan_je\[inception\]'"):
        InceptionJointEntropy()


def test_the_docstring_examples_run():
    result = doctest.testmod(gan_je.metrics)
    assert result.attempted >= 10 and result.failed == 0


# ----------------------------------------------------------------------------- DDP

# uneven shards: rank 1 sees fewer real batches and no generated samples in the first epoch
SHARDS = {
    0: (batches(3, 70, 10), batches(2, 90, 11, scale=0.5)),
    1: (batches(1, 45, 12), []),
}
NEXT_FAKES = {0: batches(1, 60, 15, scale=0.7), 1: batches(2, 40, 16, scale=0.7)}


def _two_epochs(metric, rank, leave_synced=False):
    """Real and fake samples, compute, reset, new fakes only, compute."""
    reals, fakes = SHARDS[rank]
    first = values(feed(metric, reals, fakes).compute())
    if leave_synced:
        metric.sync()  # as a caller that syncs by hand and resets without unsync()
    metric.reset()
    held = metric._samples("real")[0].shape[0]
    return first, values(feed(metric, [], NEXT_FAKES[rank]).compute()), held


def _ddp_worker(rank, world_size, port, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        unbounded = {"max_samples": None, "n_projections": 4}
        result = {
            "plain": _two_epochs(JointEntropy(**unbounded, reset_real_features=False), rank),
            "left_synced": _two_epochs(
                JointEntropy(**unbounded, reset_real_features=False, quality=False),
                rank,
                leave_synced=True,
            ),
        }
        # subsampled: kept real samples and new fakes equal a fresh metric, over processes
        bounded = {"max_samples": 100, "n_projections": 4, "quality": False}
        kept = JointEntropy(**bounded, reset_real_features=False)
        result["bounded_kept"] = _two_epochs(kept, rank)[1]
        fresh = feed(JointEntropy(**bounded), SHARDS[rank][0], NEXT_FAKES[rank])
        result["bounded_fresh"] = values(fresh.compute())
        torch.save(result, f"{out_path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_with_uneven_shards_equals_single_process(tmp_path):
    out = str(tmp_path / "result")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    ranks = [torch.load(f"{out}.{r}") for r in range(2)]
    real = [torch.cat(SHARDS[0][0] + SHARDS[1][0])]
    first, second = (
        values(feed(JointEntropy(max_samples=None, n_projections=4), real, [fake]).compute())
        for fake in (torch.cat(SHARDS[0][1]), torch.cat(NEXT_FAKES[0] + NEXT_FAKES[1]))
    )
    assert first["jsd"] != pytest.approx(second["jsd"])
    for rank, result in enumerate(ranks):
        for variant in ("plain", "left_synced"):
            epoch_1, epoch_2, held = result[variant]
            quality = {"precision", "recall", "density", "coverage", "frechet"}
            without_quality = {key for key in first if key.removesuffix("_se") not in quality}
            assert set(epoch_1) == (set(first) if variant == "plain" else without_quality)
            assert epoch_1 == pytest.approx({k: first[k] for k in epoch_1}, abs=1e-9), variant
            assert epoch_2 == pytest.approx({k: second[k] for k in epoch_2}, abs=1e-9), variant
            assert held == len(SHARDS[rank][0]) * SHARDS[rank][0][0].shape[0], variant
        assert result["bounded_kept"] == pytest.approx(result["bounded_fresh"], abs=1e-12)
    assert ranks[0]["bounded_kept"] == pytest.approx(ranks[1]["bounded_kept"], abs=1e-12)


@requires_cuda
def test_metric_on_cuda_matches_cpu():
    reals, fakes = batches(2, 500, 13), batches(2, 500, 14, scale=0.7)
    cpu = feed(JointEntropy(max_samples=None), reals, fakes)
    gpu = JointEntropy(max_samples=None).cuda()
    feed(gpu, [real.cuda() for real in reals], [fake.cuda() for fake in fakes])
    a, b = cpu.compute(), gpu.compute()
    for key in a:
        assert b[key].device.type == "cuda"
        assert b[key].item() == pytest.approx(a[key].item(), abs=1e-6), key


def test_joint_entropy_reports_sample_quality_next_to_the_entropies():
    generator = torch.Generator().manual_seed(5)
    real = torch.randn(400, 3, generator=generator)
    fake = 0.8 * torch.randn(300, 3, generator=generator) + 0.2
    metric = feed(JointEntropy(max_samples=None, n_projections=2), [real], [fake])
    values = metric.compute()
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert (values["precision"], values["recall"]) == (precision, recall)
    assert (values["density"], values["coverage"]) == (density, coverage)
    torch.testing.assert_close(values["frechet"], gaussian.frechet_distance(real, fake))
    plain = feed(JointEntropy(quality=False, max_samples=None, n_projections=2), [real], [fake])
    assert "precision" not in plain.compute()


def test_finite_samples_beyond_float32_say_how_to_keep_them():
    metric = JointEntropy(k=3, quality=False)
    huge = torch.randn(20, 2, dtype=torch.float64) * 1e300
    with pytest.raises(ValueError, match=r"beyond torch\.float32's range .*set_dtype"):
        metric.update(huge, real=True)
    metric.set_dtype(torch.float64)
    metric.update(huge, real=True)
    metric.update(huge * 0.5, real=False)
    assert torch.isfinite(metric.compute()["entropy_real"])


def test_standard_errors_and_copying_are_reported():
    generator = torch.Generator().manual_seed(11)
    train = torch.randn(600, 3, generator=generator)
    held_out = torch.randn(600, 3, generator=generator)
    metric = JointEntropy(n_projections=2, reset_real_features=False)
    metric.update(held_out, real=True)
    metric.update(train[:400], real=False)  # copies of the training set
    values = metric.compute()
    assert "copying" not in values  # no training samples given
    for key in ("entropy_real", "entropy_fake", "jsd", "precision", "recall", "jsd_classifier"):
        assert 0 < float(values[f"{key}_se"]) < 1, key
    assert abs(float(values["jsd_classifier"])) < 0.05  # the same distribution
    assert metric.wants_training_samples()
    metric.update_training(train)
    assert not metric.wants_training_samples()
    values = metric.compute()
    assert float(values["copying"]) < -3
    # 400 generated samples: 10 cells, every one of them copied
    assert float(values["copying_cells"]) == 10 and float(values["copying_share"]) == 1
    metric.reset()  # keeps the real and the training samples
    metric.update(torch.randn(400, 3, generator=generator), real=False)  # fresh samples
    values = metric.compute()
    assert abs(float(values["copying"])) < 3
    assert float(values["copying_cells"]) == 0 and float(values["copying_share"]) == 0
    plain = JointEntropy(standard_errors=0, copying=False, jsd_classifier=False, n_projections=2)
    plain.update(held_out, real=True)
    plain.update_training(train)
    plain.update(train[:400], real=False)
    assert not any(
        key.endswith("_se") or key.startswith("copying") or key == "jsd_classifier"
        for key in plain.compute()
    )
    assert not plain.wants_training_samples()  # copying=False: never asks for them
    with pytest.raises(ValueError, match=r"samples must be a torch\.Tensor"):
        metric.update_training(train.numpy())
    with pytest.raises(ValueError, match="standard_errors: it must be"):
        JointEntropy(standard_errors="yes")


def test_copying_is_nan_where_it_is_undefined_and_uses_fewer_cells_for_few_samples():
    generator = torch.Generator().manual_seed(12)
    train = torch.randn(300, 2, generator=generator)
    metric = JointEntropy(
        n_projections=2, quality=False, standard_errors=0, reset_real_features=False
    )
    metric.update(torch.randn(300, 2, generator=generator), real=True)
    metric.update_training(train)
    metric.update(train[:30], real=False)  # 30 copies: one cell of 30, still flagged
    assert float(metric.compute()["copying"]) < -3
    metric.reset()
    metric.update(train[:10], real=False)  # fewer than MIN_GENERATED: undefined
    values = metric.compute()
    assert all(math.isnan(float(values[key])) for key in ("copying", "copying_cells"))
    assert math.isnan(float(values["copying_share"]))
