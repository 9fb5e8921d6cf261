"""Secrets: values of keys that name one never reach what a run writes or uploads."""

from gan_je.redaction import REDACTED, is_secret, public_config, public_overrides


def test_keys_that_name_a_secret():
    for key in ("password", "db.PASSWD", "+secret_password", "wandb.api_key", "x.apikey"):
        assert is_secret(key), key
    for key in ("seed", "model.pack", "loss", "data.path"):
        assert not is_secret(key), key


def test_configs_and_overrides_are_redacted_and_the_rest_kept():
    config = {"seed": 1, "db": {"api_token": "t0k", "hosts": [{"password": "p"}]}, "lr": 0.1}
    assert public_config(config) == {
        "seed": 1,
        "db": {"api_token": REDACTED, "hosts": [{"password": REDACTED}]},
        "lr": 0.1,
    }
    overrides = ["seed=3", "+secret_password=hunter2", "db.credential=a=b", "~old_token"]
    assert public_overrides(overrides) == [
        "seed=3",
        f"+secret_password={REDACTED}",
        f"db.credential={REDACTED}",
        "~old_token",
    ]
