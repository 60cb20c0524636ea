"""Messages on standard error: one line each, control characters quoted."""

import sys

_MAX_LISTED = 20


def _err(message):
    print(message, file=sys.stderr, flush=True)


def _printable(text):
    """``text`` for a stderr line: quoted if it holds control characters
    (newlines, ANSI escapes) that could forge or hide other lines."""
    text = str(text)
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        return repr(text)
    return text


def _list_skipped(errors, command):
    for path, reason in errors[:_MAX_LISTED]:
        _err(f"{command}: skipped {_printable(path)}: {_printable(reason)}")
    if len(errors) > _MAX_LISTED:
        _err(f"{command}: ... and {len(errors) - _MAX_LISTED} more skipped "
             "(see the output).")
