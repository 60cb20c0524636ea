"""Progress reports: a tqdm bar on a terminal, occasional plain lines elsewhere.

Every progress report of skacd goes through :func:`progress`. On a terminal it
is a :class:`tqdm.tqdm` bar; when the stream is not a terminal (a CI log,
``> log 2>&1``) it writes one plain line at most every ``interval`` seconds,
never carriage-return updates.
"""

import sys
import time

__all__ = ["progress"]

#: Seconds between two plain progress lines.
PLAIN_INTERVAL = 10.0


def _is_terminal(file):
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or detached stream
        return False


def progress(total, desc, unit="it", *, file=None, delay=0.0, leave=True,
             interval=None, **tqdm_kwargs):
    """A progress report with tqdm's ``update`` / ``set_postfix`` / ``close``.

    Parameters
    ----------
    total : int
        The number of steps.
    desc : str
        What progresses, the start of every line.
    unit : str, default="it"
        The name of one step.
    file : file-like or None, default=None
        Where the report goes; ``None`` is :data:`sys.stderr` at each write.
    delay : float, default=0.0
        Nothing is shown before ``delay`` seconds have passed.
    leave : bool, default=True
        Whether a terminal bar stays once closed.
    interval : float or None, default=None
        Off a terminal, the fewest seconds between two lines; ``None`` is
        :data:`PLAIN_INTERVAL`, read at each call.
    **tqdm_kwargs : dict
        More :class:`tqdm.tqdm` options, used on a terminal only.

    Returns
    -------
    report : tqdm.tqdm or PlainProgress
        Call ``update(n)`` after ``n`` steps and ``close()`` at the end.
    """
    stream = sys.stderr if file is None else file
    if _is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, file=stream, delay=delay,
                    leave=leave, **tqdm_kwargs)
    return PlainProgress(total, desc, unit, file=file, delay=delay, interval=interval)


class PlainProgress:
    """Progress as occasional plain lines, for streams that are not terminals.

    A line ``desc: n/total unit (p%), t s elapsed[, postfix]`` is written at
    most every ``interval`` seconds (the first after ``max(delay, interval)``),
    and a last one on :meth:`close` if any was written before, so that a short
    run writes nothing and a long one ends with its total.

    Parameters
    ----------
    total : int
        The number of steps.
    desc : str
        What progresses.
    unit : str, default="it"
        The name of one step.
    file : file-like or None, default=None
        Where the lines go; ``None`` is :data:`sys.stderr` at each write.
    delay : float, default=0.0
        No line before ``delay`` seconds.
    interval : float or None, default=None
        The fewest seconds between two lines; ``None`` is :data:`PLAIN_INTERVAL`.
    clock : callable, default=time.monotonic
        The time in seconds.
    """

    def __init__(self, total, desc, unit="it", *, file=None, delay=0.0,
                 interval=None, clock=time.monotonic):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.file = file
        self.interval = PLAIN_INTERVAL if interval is None else interval
        self._clock = clock
        self._start = clock()
        self._next = self._start + max(delay, self.interval)
        self._postfix = ""
        self._written = 0

    def update(self, n=1):
        """Count ``n`` more steps; write a line if ``interval`` has passed."""
        self.n += n
        now = self._clock()
        if now >= self._next:
            self._write(now)
            self._next = now + self.interval

    def set_postfix(self, **values):
        """Add ``key=value`` pairs to the next lines."""
        self._postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self):
        """Write the final count, if a line was written before."""
        if self._written:
            self._write(self._clock())
            self._written = 0

    def _write(self, now):
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        line = (f"{self.desc}: {count} {self.unit}{share}, "
                f"{now - self._start:.0f} s elapsed")
        if self._postfix:
            line += f", {self._postfix}"
        stream = sys.stderr if self.file is None else self.file
        print(line, file=stream, flush=True)
        self._written += 1
