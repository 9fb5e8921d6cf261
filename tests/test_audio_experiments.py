"""The audio experiments end to end, through the real command line: each of
``experiment=spoken_digits_wavegan`` and ``spoken_digits_specgan`` on a few voices logs the
class scores beside their real ceiling and the k-NN metric in log-mel features, and writes
its samples as spectrograms and WAV files; ``evaluate`` works on its checkpoint with no data
present (the clips are synthesised again), ``generate format=wav`` without any data."""

from __future__ import annotations

import json
import math
import wave

import pytest

from tests.cli import QUIET, last_value, metric_rows, run_module

pytestmark = pytest.mark.slow

#: four voices (one held out) saying each digit twice: 60 training and 20 held-out clips
TINY_DIGITS = ["data.accents=[en-us]", "data.variants=[f1,m1,m3,f3]", "data.val_variants=1"]
TINY_DIGITS += ["data.clips_per_word=2", "data.batch_size=16", "data.cache_dir=null"]
TINY_DIGITS += ["callbacks.class_scores.n_samples=20", "callbacks.class_scores.epochs=2"]
TINY_DIGITS += ["model.generator.width=2", "model.discriminator.width=2"]
#: what each run must log after each validation
KEYS = ["inception_score", "inception_score_real", "class_kl", "classes_covered"]
KEYS += ["classifier_accuracy", "jsd", "entropy_fake", "entropy_real"]


@pytest.mark.parametrize("model", ["wavegan", "specgan"])
def test_a_spoken_digits_experiment_trains_evaluates_and_writes_wav(tmp_path, model):
    run = tmp_path / "run"
    overrides = [f"experiment=spoken_digits_{model}", *TINY_DIGITS, *QUIET]
    run_module(
        "gan_je.train", *overrides, "loss.entropy_weight=0.1", f"hydra.run.dir={run}", cwd=tmp_path
    )
    rows = metric_rows(run)
    values = {key: last_value(rows, f"val/{key}") for key in KEYS}
    assert all(math.isfinite(v) for v in values.values()), values
    assert 1 <= values["inception_score"] <= 10 and 1 <= values["inception_score_real"] <= 10
    assert 0 <= values["class_kl"] <= math.log(10) + 1e-6
    assert values["classes_covered"] in range(1, 11)
    assert last_value(rows, "train/entropy_weight") == pytest.approx(0.1)
    picture = sorted((run / "samples").glob("*.png"))[-1]
    with wave.open(str(picture.with_suffix(".wav")), "rb") as sound:
        assert (sound.getnchannels(), sound.getsampwidth(), sound.getframerate()) == (1, 2, 8000)

    checkpoint = run / "checkpoints" / "last.ckpt"
    evaluated = run_module(
        "gan_je.evaluate", f"ckpt_path={checkpoint}", "n_samples=20", cwd=tmp_path
    )
    assert "| inception_score |" in evaluated.stdout
    (record,) = (checkpoint.parent / "evaluations").glob("last-*.json")
    metrics = json.loads(record.read_text())["metrics"]
    assert math.isfinite(metrics["inception_score"]) and math.isfinite(metrics["jsd"])
    assert metrics["inception_score_real"] >= 1
    out = tmp_path / "clips.wav"
    run_module(
        "gan_je.generate",
        f"ckpt_path={checkpoint}",
        "format=wav",
        "n=3",
        f"out={out}",
        cwd=tmp_path,
    )
    with wave.open(str(out), "rb") as sound:
        assert sound.getframerate() == 8000
        assert sound.getnframes() == 3 * 8192 + 2 * round(0.25 * 8000)
    assert sorted(path.name for path in (tmp_path / "clips").iterdir()) == [
        "000.wav",
        "001.wav",
        "002.wav",
    ]
    assert not any((tmp_path / "no_data").iterdir())  # nothing cached: cache_dir=null
