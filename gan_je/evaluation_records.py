"""The records of ``python -m gan_je.evaluate``: one JSON file per evaluation, kept beside
the checkpoint in ``evaluations/``, e.g. ``<run>/checkpoints/evaluations/
last-pca-val-3fa9c1d2e4.json``.

A record is keyed by the settings in :data:`SETTINGS` (the checkpoint, its generator step,
the split, the sample sizes compared, the seed, the baseline switch, the features
compared in, and the sampling temperature and the class scores' network where one was set;
the estimator is the checkpoint's own): an evaluation with the same settings replaces its
own record, any other adds one. One file per record rather than one list: each is replaced
atomically on its own, so two evaluations running at once never lose each other's record
(a shared list would need a lock around read-modify-write), and ``ls`` shows what was
evaluated.
Records hold plain JSON values only (strings, numbers, booleans, null, lists, objects; a
NaN or infinite number is written as null), so any JSON reader can read them without
gan_je.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from pathlib import Path
from typing import Any

from gan_je.atomic_files import write_atomically
from gan_je.errors import RecordError

#: The folder beside the checkpoint that holds its evaluation records.
FOLDER = "evaluations"
#: The fields of a record that make an evaluation what it is: one record per combination.
SETTINGS = (
    "ckpt_path", "g_step", "split", "n_real", "n_generated", "seed", "baseline", "features",
)  # fmt: skip


def records_folder(ckpt_path: str | Path) -> Path:
    """Where the evaluations of the checkpoint ``ckpt_path`` are recorded."""
    return Path(ckpt_path).parent / FOLDER


def plain(value: Any, where: str = "record") -> Any:
    """``value`` as plain JSON values: dicts with string keys, lists (from lists and tuples),
    strings, booleans, None, whole numbers, and finite floats (NaN and infinities become
    None). Anything else (an object, a tensor) is a ``TypeError`` naming ``where`` it is, so
    no ``repr`` ever stands in for a value."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, numbers.Integral):  # NumPy's too
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise TypeError(f"{where} has keys that are not strings: {list(value)!r}"[:300])
        return {key: plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(
        f"{where} holds a value of type {type(value).__name__}, not a plain JSON value "
        "(a string, number, boolean, null, list or dict)"
    )


def record_name(record: dict[str, Any]) -> str:
    """The record's file name: the checkpoint's name, the features' class, the split, and a
    digest of every setting in :data:`SETTINGS` (``last-pca-val-3fa9c1d2e4.json``)."""
    missing = [key for key in SETTINGS if key not in record]
    if missing:
        raise ValueError(f"an evaluation record needs the settings {', '.join(missing)}")
    settings = plain({key: record[key] for key in SETTINGS}, "the settings")
    for key in ("temperature", "class_scores_network"):  # not in the digest unset: older
        if record.get(key) is not None:  # records keep theirs
            settings[key] = record[key]
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    kind = features_name(settings["features"])
    return f"{Path(settings['ckpt_path']).stem}-{kind}-{settings['split']}-{digest}.json"


def features_name(features: Any) -> str:
    """A record's ``features`` config in one word: its class's name in lower case
    (``pca``, ``classifier``), or ``samples`` where the samples themselves are compared."""
    target = features.get("_target_", "") if isinstance(features, dict) else ""
    return str(target).rsplit(".", 1)[-1].lower() or "samples"


def write_record(folder: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` (plain values, :func:`plain`) to ``folder``/:func:`record_name`
    atomically, replacing the record of the same settings; return its path."""
    record = plain(record)
    path = Path(folder) / record_name(record)
    write_atomically(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path


def read_records(folder: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every record in ``folder`` (none when it does not exist), by file name, each with its
    path. A file that is not a JSON object is a :class:`RecordError` naming it."""
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise RecordError(f"{path} is not readable JSON ({err})") from None
        if not isinstance(record, dict):
            raise RecordError(f"{path} holds a {type(record).__name__}, not an evaluation")
        records.append((path, record))
    return records
