"""The overrides that name a run's setting: every seed left out, nothing else."""

from gan_je.overrides import without_seed


def test_seeds_are_left_out_and_settings_kept():
    overrides = ["seed=1", "loss=hinge", "data.data_seed=2", "+seeds_note=x", "model.lr=2e-4"]
    assert without_seed(overrides) == ["loss=hinge", "+seeds_note=x", "model.lr=2e-4"]
