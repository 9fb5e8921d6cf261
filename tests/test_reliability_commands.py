"""Issue 29, commands and checkpoint reading: each user-caused failure of ``generate``,
``evaluate``, ``report`` and of loading a checkpoint is one sentence (a
:class:`gan_je.errors.GanJeError`) before any work, never a traceback or a silent wrong
result. Rows of docs/reliability.md, section "Commands and estimators"."""

from __future__ import annotations

import pytest

from gan_je.checks import available_memory, check_fits_in_memory
from gan_je.errors import ConfigError


def test_memory_check_names_the_setting_and_the_largest_count_that_fits():
    check_fits_in_memory("n", 1000, 8, available=8000)  # exactly fits
    with pytest.raises(ConfigError, match=r"n=1001 needs .* at most n=1000 fits"):
        check_fits_in_memory("n", 1001, 8, available=8000)


def test_available_memory_is_a_plausible_number_of_bytes():
    assert 2**20 < available_memory() < 2**50
