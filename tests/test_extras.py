import pytest

from gan_je.errors import ConfigError
from gan_je.extras import MissingExtraError, require


def test_require_returns_the_module():
    import math

    assert require("math", "none", "maths") is math


def test_a_missing_module_names_the_extra_in_one_sentence():
    with pytest.raises(MissingExtraError, match=r"pip install 'gan_je\[fast\]'") as info:
        require("no_such_module_for_gan_je", "fast", "backend='fast'")
    message = str(info.value)
    assert "backend='fast'" in message and "\n" not in message
    assert isinstance(info.value, ConfigError) and isinstance(info.value, ImportError)
