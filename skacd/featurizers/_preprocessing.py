"""The preprocessing an encoder applies, as plain data: recorded, compared, shown.

Each featurizer describes the preprocessing its weights need as a small dict
of JSON values (``size``, ``mean``, ``std``, ``interpolation`` and the resize
or crop mode, in the encoder library's own names). The dict is part of the
encoder identity (hence of the feature cache key), is stored in detector
files as the featurizer's ``preprocessing_`` and is compared with what the
featurizer builds when the detector is used again.
"""

from ..exceptions import PreprocessingMismatchError

__all__ = ["as_record", "describe", "check_preprocessing"]


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    return float(value)


def as_record(config):
    """``config`` with tuples as lists and numbers as plain ints and floats."""
    return {str(k): _plain(v) for k, v in sorted(config.items())}


def describe(record):
    """One line: ``'32x32, bilinear, resize_mode squash, mean (...), std (...)'``."""
    if not record:
        return "unknown"
    parts = []
    size = record.get("size", record.get("input_size"))
    if size is not None:
        h, w = (size, size) if isinstance(size, (int, float)) else size[-2:]
        parts.append(f"{h}x{w}")
    for key, value in record.items():
        if key in ("size", "input_size", "mean", "std"):
            continue
        parts.append(f"{key} {value}")
    for key in ("mean", "std"):
        if key in record:
            values = ", ".join(f"{v:.4g}" for v in record[key])
            parts.append(f"{key} ({values})")
    return ", ".join(parts)


def check_preprocessing(recorded, now, what):
    """Raise :class:`PreprocessingMismatchError` if ``recorded != now``.

    Parameters
    ----------
    recorded : dict or None
        The preprocessing a detector was fitted with (None: not recorded, by
        a file from before skacd recorded it; nothing to compare).
    now : dict
        The preprocessing the featurizer builds now.
    what : str
        Names the detector or featurizer in the message.
    """
    if recorded is None or as_record(recorded) == as_record(now):
        return
    recorded, now = as_record(recorded), as_record(now)
    keys = sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))
    raise PreprocessingMismatchError(
        f"{what} was fitted on images preprocessed as [{describe(recorded)}], but "
        f"the featurizer now preprocesses them as [{describe(now)}] (differing: "
        f"{', '.join(keys)}). Scores on these features would be wrong, so they are "
        "refused. Use the "
        "weights and preprocessing it was fitted with (for a local CLIP checkpoint, "
        "set weights_tag to the open_clip tag it holds), or fit it again."
    )
