"""How generated sound leaves gan_je: WAV files read back with the standard library's
``wave``, the grid of log-mel spectrograms, the clips sent to W&B and TensorBoard, the run
directory's ``.wav`` beside each picture and ``generate format=wav``."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import wandb
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from gan_je import audio
from gan_je.audio import log_mel
from gan_je.callbacks import SamplePictures
from gan_je.data import kinds
from gan_je.data.kinds import kind_of
from gan_je.errors import ConfigError
from gan_je.generate import run as generate
from gan_je.loggers import STEP_METRIC, send_audio, wandb_logger
from gan_je.pictures import spectrograms_figure
from gan_je.sampling import build_generator
from tests.test_wandb_charts import offline_runs, read_run

CONF = Path(__file__).resolve().parents[1] / "conf"
#: Two channels at 400 samples per second: the silence between clips is 100 frames.
SPEC = {"kind": "waveform", "sample_shape": [2, 64], "sample_rate": 400}
GAP = 100
#: Half a step of 16-bit PCM, the most a value may move when written (plus float error).
QUANTUM = 0.5 / 32767 + 1e-6


def _clips(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, 64, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _read(path: Path | bytes) -> tuple[np.ndarray, int]:
    """A WAV file (or its bytes) through ``wave`` alone: ``(channels, frames)`` in [-1, 1]
    and the rate; 16-bit samples only."""
    with wave.open(io.BytesIO(path) if isinstance(path, bytes) else str(path), "rb") as file:
        assert file.getsampwidth() == 2 and file.getcomptype() == "NONE"
        channels, rate = file.getnchannels(), file.getframerate()
        frames = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")
    return frames.reshape(-1, channels).T / 32767, rate


def test_the_wav_holds_every_clip_with_silence_between_and_each_in_its_own_file(tmp_path):
    clips = _clips(3)
    clips[0, 1, :4] = torch.tensor([1.5, -1.5, 1.0, -1.0])  # beyond full scale: clipped
    path = tmp_path / "out" / "samples.wav"
    kind_of(SPEC).write(clips, path, "wav", "t", strip=False)
    expected = clips.clamp(-1, 1).numpy()

    values, rate = _read(path)
    assert rate == 400 and values.shape == (2, 3 * 64 + 2 * GAP)
    for index, clip in enumerate(expected):
        start = index * (64 + GAP)
        assert np.abs(values[:, start : start + 64] - clip).max() <= QUANTUM
        if index < 2:  # then silence: exact zeros, every channel
            assert not values[:, start + 64 : start + 64 + GAP].any()
    folder = tmp_path / "out" / "samples"
    assert sorted(p.name for p in folder.iterdir()) == ["000.wav", "001.wav", "002.wav"]
    for index, clip in enumerate(expected):
        values, rate = _read(folder / f"{index:03d}.wav")
        assert rate == 400 and values.shape == (2, 64)
        assert np.abs(values - clip).max() <= QUANTUM

    kind_of(SPEC).write(clips[:2], path, "wav", "t", strip=False)  # again, fewer clips
    assert sorted(p.name for p in folder.iterdir()) == ["000.wav", "001.wav"]
    (folder / "notes.txt").write_text("a file of the user's")
    with pytest.raises(ConfigError, match=r"holds files gan_je did not write there \(notes.txt\)"):
        kind_of(SPEC).write(clips, path, "wav", "t", strip=False)
    assert sorted(p.name for p in folder.iterdir()) == ["000.wav", "001.wav", "notes.txt"]
    assert _read(path)[0].shape == (2, 2 * 64 + GAP)
    mono = kind_of({**SPEC, "sample_shape": [1, 64]})
    mono.write(clips[:1, :1], tmp_path / "one.wav", "wav", "t", strip=False)
    values, _ = _read(tmp_path / "one.wav")
    assert values.shape == (1, 64) and np.abs(values - expected[0, :1]).max() <= QUANTUM


def test_writing_wavs_refuses_what_it_cannot_write(tmp_path):
    kind = kind_of(SPEC)
    (tmp_path / "taken").write_text("a file where the clips' folder would go")
    with pytest.raises(ConfigError, match="it is a file, not a folder"):
        kind.write(_clips(2), tmp_path / "taken.wav", "wav", "t", strip=False)
    assert not (tmp_path / "taken.wav").exists()
    with pytest.raises(ValueError, match=r"must end in \.wav"):
        kind.write(_clips(2), tmp_path / "clips", "wav", "t", strip=False)
    for bad in (torch.zeros(2, 1, 64), torch.zeros(2, 2, 63), torch.zeros(0, 2, 64)):
        with pytest.raises(ValueError, match=r"must have shape \(n >= 1, 2, 64\)"):
            kind.write(bad, tmp_path / "bad.wav", "wav", "t", strip=False)
    with pytest.raises(ConfigError, match="format=txt is not offered for samples of kind"):
        kind.write(_clips(2), tmp_path / "s.txt", "txt", "t", strip=False)
    assert kind.formats == ("png", "npz", "wav") and kind.companion_formats == ("wav",)


def test_the_spectrogram_grid_shares_one_colour_scale_and_counts_seconds():
    spectrograms = torch.randn(5, 8, 11) + torch.arange(5.0)[:, None, None]
    fig = spectrograms_figure(spectrograms, "t", rate=400, hop=20, max_items=4)
    images = [image for ax in fig.axes for image in ax.get_images()]
    assert len(images) == 4  # the first max_items, in a 2 x 2 grid
    shown = spectrograms[:4].numpy()
    for image, spectrogram in zip(images, shown, strict=True):
        assert np.array_equal(np.asarray(image.get_array()), spectrogram)
        assert image.get_clim() == pytest.approx((shown.min(), shown.max()))
        # frame t centred on t * hop / rate seconds: 11 frames of 0.05 s
        assert image.get_extent() == pytest.approx([-0.025, 0.525, 0, 8])
    strip = spectrograms_figure(spectrograms, "t", rate=400, hop=20, columns=5)
    assert len([ax for ax in strip.axes if ax.get_images()]) == 5
    assert len({ax.get_position().y0 for ax in strip.axes if ax.get_images()}) == 1  # one row
    for bad in (torch.zeros(8, 11), torch.zeros(0, 8, 11), torch.full((1, 2, 2), float("nan"))):
        with pytest.raises(ValueError, match="spectrograms must"):
            spectrograms_figure(bad, "t", rate=400, hop=20)
    with pytest.raises(ValueError, match="rate > 0"):
        spectrograms_figure(spectrograms, "t", rate=400, hop=0)


def test_the_waveform_picture_draws_the_log_mel_of_each_clips_mono_mix(tmp_path, monkeypatch):
    kind, clips = kind_of(SPEC), _clips(6)
    kind.picture(clips, tmp_path / "grid.png", "generator step 3")
    pixels = np.asarray(Image.open(tmp_path / "grid.png").convert("L"))
    assert pixels.shape[0] > 100 and pixels.std() > 10  # drawn, not blank
    drawn = {}
    monkeypatch.setattr(
        kinds, "show_spectrograms", lambda *args, **kw: drawn.update(args=args, kw=kw)
    )
    kind.picture(clips, tmp_path / "strip.png", "t", strip=True)
    spectrograms, path, title, rate, hop = drawn["args"]
    # 64 samples: a 64-point STFT every 16 samples, 16 mel bands
    assert torch.equal(spectrograms, log_mel(clips.mean(dim=1), 400, 64, 16, n_mels=16))
    assert (path, title, rate, hop, drawn["kw"]) == (
        tmp_path / "strip.png",
        "t",
        400,
        16,
        {"columns": 6},
    )
    with pytest.raises(ValueError, match=r"must have shape \(n >= 1, 2, 64\)"):
        kind.picture(torch.zeros(3, 1, 64), tmp_path / "bad.png", "t")
    one_sample = kind_of({**SPEC, "sample_shape": [1, 1]})
    assert not one_sample.has_picture and one_sample.formats == ("npz", "wav")


def test_the_waveform_picture_transforms_only_the_clips_it_draws(tmp_path, monkeypatch):
    transformed = []

    def recording_log_mel(x, *args, **kwargs):
        transformed.append(tuple(x.shape))
        return log_mel(x, *args, **kwargs)

    monkeypatch.setattr(audio, "log_mel", recording_log_mel)
    monkeypatch.setattr(kinds, "show_spectrograms", lambda *args, **kw: None)
    kind_of(SPEC).picture(_clips(100), tmp_path / "grid.png", "t")
    assert transformed == [(16, 64)]  # the 16 drawn, not all 100 (generate n=10000: GBs)


def test_the_loggers_receive_the_first_clips_as_sound(wandb_offline, tmp_path):
    """W&B: a ``wandb.Audio`` per clip, ``samples_audio/<index>``, at the generator step, its
    WAV (every channel) in the offline run's media; TensorBoard: the mono mixes."""
    clips = _clips(5)
    run_dir = tmp_path / "run"
    board = TensorBoardLogger(save_dir=str(tmp_path / "tb"), name="", version="")
    trainer = SimpleNamespace(loggers=[wandb_logger(save_dir=str(run_dir)), board])
    send_audio(trainer, "samples_audio", clips, 400, g_step=7, max_clips=3)
    wandb.finish()
    board.experiment.flush()

    (run_file,) = offline_runs(run_dir)
    (row,) = read_run(run_file)["rows"]
    assert row[STEP_METRIC] == 7
    assert sorted(key for key in row if key.endswith("/_type")) == [
        f"samples_audio/{index}/_type" for index in range(3)
    ]
    for index in range(3):
        assert row[f"samples_audio/{index}/_type"] == "audio-file"
        values, rate = _read(run_file.parent / "files" / row[f"samples_audio/{index}/path"])
        assert rate == 400 and np.abs(values - clips[index].numpy()).max() <= QUANTUM

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0}).Reload()
    assert sorted(events.Tags()["audio"]) == [f"samples_audio/{index}" for index in range(3)]
    for index in range(3):
        (event,) = events.Audio(f"samples_audio/{index}")
        values, rate = _read(event.encoded_audio_string)
        assert (event.step, event.sample_rate, rate) == (7, 400, 400)
        # TensorBoard's writer truncates towards zero: within one step of 16-bit PCM
        assert np.abs(values[0] - clips[index].mean(0).numpy()).max() <= 1 / 32767 + 1e-6
    for bad in (torch.zeros(3, 64), torch.zeros(0, 2, 64)):
        with pytest.raises(ValueError, match="clips must have shape"):
            send_audio(trainer, "k", bad, 400, g_step=1)
    with pytest.raises(ValueError, match="max_clips"):
        send_audio(SimpleNamespace(loggers=[]), "k", clips, 400, g_step=1, max_clips=0)


def test_the_sample_callback_keeps_the_clips_beside_the_picture(tmp_path):
    clips = _clips(4)
    trainer = SimpleNamespace(is_global_zero=True, sanity_checking=False, current_epoch=2)
    trainer.loggers = []
    module = SimpleNamespace(hparams=SimpleNamespace(data_spec=SPEC), g_step=40)
    module.preview = lambda: clips
    SamplePictures(str(tmp_path)).on_validation_end(trainer, module)
    folder = tmp_path / "samples"
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch002-g000040",
        "epoch002-g000040.png",
        "epoch002-g000040.wav",
    ]
    values, _ = _read(folder / "epoch002-g000040.wav")
    assert values.shape == (2, 4 * 64 + 3 * GAP)
    assert len(list((folder / "epoch002-g000040").iterdir())) == 4


def _generate(*overrides: str) -> Path:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return generate(compose(config_name="generate", overrides=list(overrides)))


def test_generate_writes_playable_wavs_of_a_waveform_checkpoint(tmp_path):
    """A checkpoint of an MLP generator on two-channel waveforms (no training: what
    ``load_sampler`` reads); ``format=wav`` writes what ``format=npz``'s samples hold, seed
    for seed; ``out`` names a ``.wav`` or an existing folder; ``format=txt`` is refused."""
    description = {"_target_": "gan_je.models.MLPGenerator", "_partial_": True, "hidden": 16}
    network = build_generator(description, SPEC)
    state = {f"generator.{name}": tensor for name, tensor in network.state_dict().items()}
    checkpoint = tmp_path / "last.ckpt"
    hparams = {"generator": description, "data_spec": SPEC}
    torch.save({"hyper_parameters": hparams, "state_dict": state, "g_step": 3}, checkpoint)

    wav = _generate(f"ckpt_path={checkpoint}", "format=wav", "n=3", "seed=4")
    assert wav == tmp_path / "last-samples.wav"
    npz = _generate(f"ckpt_path={checkpoint}", "format=npz", "n=3", "seed=4")
    samples = np.load(npz)["samples"]
    assert samples.shape == (3, 2, 64) and samples.std() > 0.01
    values, rate = _read(wav)
    assert rate == 400 and values.shape == (2, 3 * 64 + 2 * GAP)
    for index, sample in enumerate(samples):
        start = index * (64 + GAP)
        assert np.abs(values[:, start : start + 64] - sample).max() <= QUANTUM
        assert (
            np.abs(_read(tmp_path / "last-samples" / f"{index:03d}.wav")[0] - sample).max()
            <= QUANTUM
        )

    (tmp_path / "into").mkdir()
    into = _generate(f"ckpt_path={checkpoint}", "format=wav", "n=2", f"out={tmp_path}/into")
    assert into == tmp_path / "into" / "last-samples.wav"
    assert sorted(p.name for p in (tmp_path / "into" / "last-samples").iterdir()) == [
        "000.wav",
        "001.wav",
    ]
    strip = _generate(f"ckpt_path={checkpoint}", "format=wav", "n=4", "interpolate=true")
    assert strip == tmp_path / "last-interpolation.wav" and _read(strip)[0].shape == (
        2,
        4 * 64 + 3 * GAP,
    )
    png = _generate(f"ckpt_path={checkpoint}", "n=4", f"out={tmp_path}/grid.png")
    assert np.asarray(Image.open(png).convert("L")).std() > 10
    with pytest.raises(ConfigError, match=r"does not end in \.wav"):
        _generate(f"ckpt_path={checkpoint}", "format=wav", f"out={tmp_path}/clips.npz")
    with pytest.raises(
        ConfigError, match="format=txt is not offered for samples of kind 'waveform'"
    ):
        _generate(f"ckpt_path={checkpoint}", "format=txt")
    assert not (tmp_path / "last-samples.txt").exists()
