"""The digit classifier for waveforms (gan_je.features.Classifier, kind "waveform"): judged on
voices it has not heard, and restored from a checkpoint's state without data."""

from __future__ import annotations

import pytest
import torch

from gan_je.features import Classifier, LogMel


@pytest.mark.slow
def test_the_waveform_classifier_recognises_digits_said_by_unheard_voices():
    """Trained on the training voices of a small spoken digits set (3 accents, every
    variant, one clip of each digit a voice), judged on the held-out variants' voices."""
    pytest.importorskip("espeakng_loader")
    from gan_je.data import SpokenDigits
    from gan_je.data.speech import ENGLISH_ACCENTS

    data = SpokenDigits(accents=list(ENGLISH_ACCENTS[:3]), clips_per_word=1, val_variants=0.25)
    data.setup("fit")
    (x, labels), (x_val, labels_val) = data.train_set.tensors, data.val_set.tensors
    classifier = Classifier(dim=8, epochs=20)  # ClassScores' epochs
    classifier.fit(x, labels, kind="waveform", sample_rate=data.sample_rate)
    assert isinstance(classifier.net[0], LogMel)
    assert classifier.accuracy(x_val, labels_val) > 0.9


def _small_waveform_classifier() -> Classifier:
    return Classifier(dim=4, embedding=8, epochs=1)


def test_a_fitted_waveform_classifier_loads_from_its_state_without_data(tmp_path):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 1024, generator=generator) * 0.1
    labels = torch.arange(40) % 3
    fitted = _small_waveform_classifier().fit(x, labels, kind="waveform", sample_rate=4000)
    torch.save(fitted.state_dict(), tmp_path / "features.pt")

    fresh = _small_waveform_classifier()
    fresh.load_state_dict(torch.load(tmp_path / "features.pt", weights_only=True))
    assert fresh.kind == "waveform" and fresh.sample_rate == 4000
    assert fresh.net[0].sample_rate == 4000
    assert torch.equal(fresh(x), fitted(x))
    assert torch.equal(fresh.probabilities(x), fitted.probabilities(x))


def test_a_waveform_classifier_needs_the_sample_rate():
    x, labels = torch.zeros(6, 1, 256), torch.arange(6) % 2
    with pytest.raises(ValueError, match="sample_rate"):
        _small_waveform_classifier().fit(x, labels, kind="waveform")
    state = _small_waveform_classifier().fit(x, labels, "waveform", 4000).state_dict()
    del state["_extra_state"]["sample_rate"]
    with pytest.raises(ValueError, match="sample_rate"):
        _small_waveform_classifier().load_state_dict(state)


def test_log_mel_frames_scale_with_the_rate():
    """32 ms windows: the same image for 8,192 samples at 8 kHz and 16,384 at 16 kHz."""
    low, high = LogMel(8000), LogMel(16000)
    assert (low.n_fft, low.hop, high.n_fft, high.hop) == (256, 128, 512, 256)
    assert low(torch.zeros(2, 1, 8192)).shape == high(torch.zeros(2, 1, 16384)).shape
    assert low(torch.zeros(2, 1, 8192)).shape == (2, 1, 40, 65)
    with pytest.raises(ValueError, match="waveforms"):
        low(torch.zeros(2, 8192))


def test_log_mel_pca_is_pca_of_the_log_mel_images_and_loads_without_data(tmp_path):
    from gan_je.audio import log_mel
    from gan_je.features import PCA, LogMelPCA

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 1, 1024, generator=generator) * torch.rand(30, 1, 1, generator=generator)
    fitted = LogMelPCA(dim=3).fit(x, sample_rate=4000)
    images = log_mel(x, 4000, n_fft=128, hop=64).flatten(1)  # 32 ms at 4 kHz: 128 samples
    assert torch.allclose(fitted(x), PCA(dim=3).fit(images)(images), atol=1e-4)
    torch.save(fitted.state_dict(), tmp_path / "features.pt")
    fresh = LogMelPCA(dim=3)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh(x)
    fresh.load_state_dict(torch.load(tmp_path / "features.pt", weights_only=True))
    assert torch.equal(fresh(x), fitted(x))
    with pytest.raises(ValueError, match="sample_rate"):
        LogMelPCA().fit(x)
