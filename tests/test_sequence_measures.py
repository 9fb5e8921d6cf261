"""The exact sequence measures against enumeration: a tiny oracle (vocabulary 3, length 4)
has 81 sequences, so every expectation is also a finite sum."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gan_je.models.lstm import LSTMLanguageModel
from gan_je.sequence_measures import (
    KEYS,
    exact_jensen_shannon,
    log_probs,
    sequence_measures,
)

V, L = 3, 4
ALL = torch.tensor(list(itertools.product(range(V), repeat=L)))  # (81, 4)


@pytest.fixture(scope="module")
def oracle() -> LSTMLanguageModel:
    model = LSTMLanguageModel(V, L, embed_dim=4, hidden_dim=4)
    return model.init_normal_(torch.Generator().manual_seed(0)).eval().requires_grad_(False)


class Tempered:
    """The oracle sampled and scored at a temperature: another exact distribution."""

    def __init__(self, model: LSTMLanguageModel, temperature: float) -> None:
        self.model, self.temperature = model, temperature

    def log_prob(self, ids):
        return self.model.log_prob(ids, self.temperature)

    def sample(self, n: int, seed: int):
        return self.model.sample(n, torch.Generator().manual_seed(seed), self.temperature)


class Collapsed:
    """A generator that emits one sequence: log q = 0 there, -inf elsewhere."""

    def __init__(self, sequence) -> None:
        self.sequence = sequence

    def log_prob(self, ids):
        same = (ids == self.sequence).all(dim=1)
        return torch.where(same, 0.0, -math.inf)


def enumerated(log_p, log_q) -> dict[str, float]:
    """The truth by summing over all 81 sequences."""
    p, q = log_p.exp(), log_q.exp()
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    jsd = 0.5 * torch.xlogy(p, p).sum() - 0.5 * (p * log_m).sum()
    jsd += 0.5 * torch.xlogy(q, q).sum() - 0.5 * torch.where(q > 0, q * log_m, 0.0).sum()
    return {
        "nll_oracle": float(-(q * log_p).sum() / L),
        "entropy_per_token_oracle": float(-torch.xlogy(p, p).sum() / L),
        "entropy_per_token_fake": float(-torch.xlogy(q, q).sum() / L),
        "jsd_exact": float(jsd),
        "kl_oracle_generator": float((torch.xlogy(p, p).sum() - (p * log_q).sum()) / L),
        "kl_generator_oracle": float(
            (torch.xlogy(q, q).sum() - torch.where(q > 0, q * log_p, 0.0).sum()) / L
        ),
    }


def test_the_oracle_is_a_distribution_over_the_81_sequences(oracle):
    assert log_probs(oracle, ALL).exp().sum().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_monte_carlo_measures_agree_with_enumeration(oracle, temperature):
    q = Tempered(oracle, temperature)
    truth = enumerated(log_probs(oracle, ALL), log_probs(q, ALL))
    real, fake = Tempered(oracle, 1.0).sample(4000, 1), q.sample(4000, 2)
    measures = sequence_measures(fake, real, oracle=oracle, generator=q)
    for key, value in truth.items():
        se = measures[f"{key}_se"].item()
        assert 0 < se < 0.02
        assert measures[key].item() == pytest.approx(value, abs=4 * se), key
    assert truth["jsd_exact"] > 0.01  # a temperature moves q measurably away from p
    # cross-entropy minus entropy, from the same per-sequence values
    kl = measures["nll_test"] - measures["entropy_per_token_oracle"]
    assert measures["kl_oracle_generator"].item() == pytest.approx(kl.item(), abs=1e-12)
    kl = measures["nll_oracle"] - measures["entropy_per_token_fake"]
    assert measures["kl_generator_oracle"].item() == pytest.approx(kl.item(), abs=1e-12)
    # the differences' error, smaller than the two terms' errors added (they correlate)
    added = measures["nll_test_se"] + measures["entropy_per_token_oracle_se"]
    assert measures["kl_oracle_generator_se"].item() < added.item()
    # NLL-test: the generator's NLL of the real samples, against -sum p log q / L
    nll = -(log_probs(oracle, ALL).exp() * log_probs(q, ALL)).sum().item() / L
    assert measures["nll_test"].item() == pytest.approx(nll, abs=4 * measures["nll_test_se"].item())


def test_the_oracle_against_itself_has_zero_jsd(oracle):
    # independent p and q samples, so that a mix-up of which samples each term reads shows
    p_samples = oracle.sample(500, torch.Generator().manual_seed(3))
    q_samples = oracle.sample(400, torch.Generator().manual_seed(4))
    assert not torch.equal(p_samples[:400], q_samples)
    value, se = exact_jensen_shannon(oracle, oracle, p_samples, q_samples)
    assert value.item() == 0.0 and se.item() == 0.0
    measures = sequence_measures(q_samples, p_samples, oracle=oracle, generator=oracle)
    assert measures["jsd_exact"].item() == 0.0
    assert measures["kl_oracle_generator"].item() == measures["kl_generator_oracle"].item() == 0
    assert measures["kl_oracle_generator_se"].item() == 0.0
    assert measures["nll_oracle"].item() == measures["entropy_per_token_fake"].item()
    assert measures["nll_test"].item() == measures["entropy_per_token_oracle"].item()
    # each from its own samples: the fake entropy from q's, the oracle's from p's
    entropy = -(log_probs(oracle, ALL).exp() * log_probs(oracle, ALL)).sum().item() / L
    for key, samples in (("entropy_per_token_fake", q_samples), ("nll_test", p_samples)):
        assert measures[key].item() == pytest.approx(-log_probs(oracle, samples).mean() / L)
        assert measures[key].item() == pytest.approx(entropy, abs=4 * measures[f"{key}_se"].item())
    assert measures["entropy_per_token_fake"].item() != measures["nll_test"].item()


def test_a_collapsed_generator_scores_a_low_nll_oracle_and_a_large_jsd(oracle):
    log_p = log_probs(oracle, ALL)
    likeliest = ALL[log_p.argmax()]
    collapsed = Collapsed(likeliest)
    truth = enumerated(log_p, log_probs(collapsed, ALL))
    real = oracle.sample(4000, torch.Generator().manual_seed(4))
    fake = likeliest.repeat(4000, 1)
    measures = sequence_measures(fake, real, oracle=oracle, generator=collapsed)
    # better "quality" than the oracle itself: NLL-oracle below the oracle's entropy
    assert measures["nll_oracle"].item() == pytest.approx(-log_p.max().item() / L)
    assert measures["nll_oracle"].item() < truth["entropy_per_token_oracle"] - 0.1
    # but far from the data: the exact JSD is large, and NLL-test infinite
    se = measures["jsd_exact_se"].item()
    assert measures["jsd_exact"].item() == pytest.approx(truth["jsd_exact"], abs=4 * se)
    assert truth["jsd_exact"] > 0.25
    assert measures["entropy_per_token_fake"].item() == 0.0
    assert measures["nll_test"].item() == math.inf
    # KL(q || p) / L = -log p(x*) / L exactly (one sequence, no sampling error); KL(p || q)
    # infinite: the generator misses every other sequence
    assert measures["kl_generator_oracle"].item() == pytest.approx(-log_p.max().item() / L)
    assert measures["kl_generator_oracle_se"].item() == 0.0
    assert measures["kl_oracle_generator"].item() == math.inf


def test_what_each_input_allows(oracle):
    real = oracle.sample(50, torch.Generator().manual_seed(5))
    fake = oracle.sample(30, torch.Generator().manual_seed(6))
    train = oracle.sample(40, torch.Generator().manual_seed(7))
    everything = sequence_measures(fake, real, train, oracle=oracle, generator=oracle)
    assert set(everything) == set(KEYS)
    assert all(value.shape == () for value in everything.values())
    no_log_prob = sequence_measures(fake, real, train, oracle=oracle, generator=object())
    assert set(no_log_prob) == {
        "nll_oracle",
        "nll_oracle_se",
        "entropy_per_token_oracle",
        "entropy_per_token_oracle_se",
    } | {k for k in KEYS if "js_" in k}
    no_oracle = sequence_measures(fake, real, generator=oracle, orders=(2,))
    assert set(no_oracle) == {
        "nll_test",
        "nll_test_se",
        "entropy_per_token_fake",
        "entropy_per_token_fake_se",
        "js_2",
    }


def test_the_real_floor_compares_as_many_training_sequences(oracle):
    real = oracle.sample(50, torch.Generator().manual_seed(8))
    train = oracle.sample(40, torch.Generator().manual_seed(9))
    measures = sequence_measures(train[:30], real, train, orders=(1, 3))
    assert measures["js_1"].item() == measures["js_1_real"].item() > 0
    assert measures["js_3"].item() == measures["js_3_real"].item()
    with pytest.raises(ValueError, match="as many training sequences"):
        sequence_measures(real, real, train)


def test_bad_input(oracle):
    ids = torch.zeros(5, L, dtype=torch.int64)
    with pytest.raises(ValueError, match="argmax"):
        sequence_measures(torch.zeros(5, L, V), ids)
    with pytest.raises(ValueError, match="same length"):
        sequence_measures(ids, torch.zeros(5, L + 1, dtype=torch.int64))
    with pytest.raises(ValueError, match="one value per sequence"):
        log_probs(type("Bad", (), {"log_prob": lambda self, x: x.sum()})(), ids)
    with pytest.raises(ValueError, match="NaN"):
        log_probs(type("Bad", (), {"log_prob": lambda self, x: x[:, 0] * math.nan})(), ids)


class UniformsGenerator(torch.nn.Module):
    """A generator of one-hot sequences from latents z ~ N(0, I): the uniforms Phi(z) pick
    the oracle's tokens at a temperature; it has the matching ``log_prob``."""

    def __init__(self, model: LSTMLanguageModel, temperature: float) -> None:
        super().__init__()
        self.model, self.temperature, self.latent_dim = model, temperature, L

    def forward(self, z):
        uniforms = torch.special.ndtr(z).clamp(max=1 - 1e-7)
        ids = self.model.sample_from_uniforms(uniforms, self.temperature)
        return torch.nn.functional.one_hot(ids, V).float()

    def log_prob(self, ids):
        return self.model.log_prob(ids, self.temperature)


def test_the_callback_logs_every_measure_once_trained(oracle):
    from types import SimpleNamespace

    from gan_je import sampling
    from gan_je.callbacks import SequenceMeasures

    generator = UniformsGenerator(oracle, 2.0)
    logged = {}
    module = SimpleNamespace(
        seed=0,
        sampler=generator,
        hparams=SimpleNamespace(
            data_spec={"kind": "tokens", "sample_shape": [L, V], "vocab_size": V}
        ),
        sample=lambda n, seed: sampling.draw(generator, n, sampling.seeded(seed)),
        log_dict=logged.update,
    )
    data = SimpleNamespace(
        oracle=oracle,
        val_ids=oracle.sample(1200, torch.Generator().manual_seed(10)),
        train_ids=oracle.sample(1200, torch.Generator().manual_seed(11)),
    )
    broadcast = SimpleNamespace(broadcast=lambda values, src: values)
    trainer = SimpleNamespace(
        sanity_checking=True, datamodule=data, is_global_zero=True, strategy=broadcast
    )
    callback = SequenceMeasures(n_samples=1000, orders=[1, 2])
    callback.on_validation_epoch_end(trainer, module)
    assert logged == {}  # not in the sanity check
    trainer.sanity_checking = False
    callback.on_validation_epoch_end(trainer, module)
    keys = {k for k in KEYS if not k.startswith(("js_3", "js_4"))}
    assert set(logged) == {f"val/{key}" for key in keys}
    truth = enumerated(log_probs(oracle, ALL), log_probs(generator, ALL))
    se = logged["val/jsd_exact_se"].item()
    assert logged["val/jsd_exact"].item() == pytest.approx(truth["jsd_exact"], abs=4 * se)
    assert logged["val/js_1"] > logged["val/js_1_real"]  # the temperature shows in unigrams
    assert generator.training  # its mode restored


def test_measuring_against_the_training_split_has_no_floor(oracle):
    from types import SimpleNamespace

    from gan_je.sequence_measures import measure_against_data

    train = oracle.sample(300, torch.Generator().manual_seed(12))
    data = SimpleNamespace(
        train_ids=train, val_ids=torch.zeros(10, L, dtype=torch.int64), oracle=oracle
    )
    fake = oracle.sample(200, torch.Generator().manual_seed(13))
    measures = measure_against_data(fake, data, orders=(1,), split="train")
    assert set(measures) == {
        "nll_oracle",
        "nll_oracle_se",
        "entropy_per_token_oracle",
        "entropy_per_token_oracle_se",
        "js_1",
    }
    # 200 of the 300 training sequences, not the 10 (constant) held-out ones
    chosen = sequence_measures(fake, train, orders=(1,))["js_1"].item()
    assert measures["js_1"].item() == pytest.approx(chosen, abs=0.01)
    with pytest.raises(ValueError, match="split"):
        measure_against_data(fake, data, split="test")


def test_the_callback_refuses_data_it_cannot_measure_before_fitting(oracle):
    from types import SimpleNamespace

    from gan_je.callbacks import SequenceMeasures
    from gan_je.errors import ConfigError

    spec = {"kind": "tokens", "sample_shape": [L, V], "vocab_size": V}
    module = SimpleNamespace(hparams={"data_spec": spec})
    ids = oracle.sample(500, torch.Generator().manual_seed(13))
    callback = SequenceMeasures(n_samples=400)
    small = SimpleNamespace(train_ids=ids, val_ids=ids[:300])
    with pytest.raises(ConfigError, match=r"sequence_measures.n_samples=400 .*500 train, 300 val"):
        callback.on_fit_start(SimpleNamespace(datamodule=small), module)
    callback.on_fit_start(
        SimpleNamespace(datamodule=SimpleNamespace(train_ids=ids, val_ids=ids)), module
    )
    no_ids = SimpleNamespace(datamodule=SimpleNamespace(train_ids=ids))
    points = {"hparams": {"data_spec": {"kind": "points", "sample_shape": [2]}}}
    for trainer, pl_module in [
        (no_ids, module),
        (SimpleNamespace(datamodule=small), SimpleNamespace(**points)),
    ]:
        with pytest.raises(
            ConfigError, match="needs a token data module with train_ids and val_ids"
        ):
            callback.on_fit_start(trainer, pl_module)


def test_the_callback_measures_on_rank_zero_and_every_rank_logs_its_values():
    from types import SimpleNamespace

    from gan_je.callbacks import SequenceMeasures

    rank_zero = {"nll_oracle": torch.tensor(2.5, dtype=torch.float64)}
    sent = []

    def broadcast(values, src):
        sent.append((values, src))
        return rank_zero

    logged = {}
    module = SimpleNamespace(log_dict=logged.update)  # no generator: nothing drawn here
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=False, strategy=SimpleNamespace(broadcast=broadcast)
    )
    SequenceMeasures().on_validation_epoch_end(trainer, module)
    assert sent == [(None, 0)] and logged == {"val/nll_oracle": torch.tensor(2.5)}
