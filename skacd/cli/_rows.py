"""The rows ``skacd predict`` writes: one per image, as CSV or JSON lines."""

import csv
import json
import os

from .._json import to_builtin
from ..exceptions import UsageError

FIELDS = ("path", "prob_fake", "p_real", "label", "encoder", "error")


_UNSAFE_CSV_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A text cell that spreadsheets show as text, never run as a formula
    (OWASP CSV injection: a leading ``'`` before = + - @ tab CR)."""
    if isinstance(value, str) and value.startswith(_UNSAFE_CSV_START):
        return "'" + value
    return value


def _write_rows(fh, rows, fmt):
    if fmt == "csv":
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow(
                ["" if row[f] is None
                 else repr(row[f]) if f in ("prob_fake", "p_real")
                 else _csv_cell(row[f])
                 for f in FIELDS]
            )
    else:
        for row in rows:
            fh.write(json.dumps({f: row[f] for f in FIELDS}) + "\n")


def _output_format(args):
    if args.format is not None:
        return args.format
    if args.output is None:
        return "csv"
    ext = os.path.splitext(args.output)[1].lower()
    if ext == ".csv":
        return "csv"
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    raise UsageError(
        f"cannot tell the output format of {args.output!r} from its extension; name "
        "it *.csv or *.jsonl, or pass --format csv|jsonl."
    )


def _label_names(classes):
    """Printable label per class: 0/1 become 'real'/'fake'."""
    names = []
    for c in classes:
        value = to_builtin(c)
        if isinstance(value, (bool, int)) and value in (0, 1):
            names.append(("real", "fake")[int(value)])
        else:
            names.append(str(value))
    return names


def _fake_column(classes):
    values = [to_builtin(c) for c in classes]
    for candidate in (1, "fake", "1_fake", "ai"):
        if candidate in values:
            return values.index(candidate)
    return len(values) - 1
