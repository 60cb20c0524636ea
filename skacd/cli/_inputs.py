"""The images a subcommand reads: files and folders searched recursively,
and folders of known-real images."""

import os

from ._common import PROG
from ._messages import _list_skipped

_EXTENSIONS = ".jpg, .jpeg, .png, .bmp, .webp, .gif, .tif, .tiff"


def _inside(path, root):
    return os.path.commonpath([path, root]) == root


def _walk_images(folder, images, walk_errors, outside=None):
    """Append the images under ``folder`` (recursively, sorted) to ``images``.

    Symbolic links are not followed out of ``folder``: links to files or
    folders elsewhere are appended to ``outside`` as ``(path, reason)``; links
    to folders inside it are not walked twice.
    """
    from ..datasets import IMAGE_EXTENSIONS

    outside = [] if outside is None else outside
    root = os.path.realpath(folder)

    def onerror(exc):
        walk_errors.append((getattr(exc, "filename", None) or folder, exc))

    def escapes(path):
        if not os.path.islink(path):
            return False
        target = os.path.realpath(path)
        if _inside(target, root):
            return False
        outside.append((path, f"a symbolic link to {target!r}, outside {folder!r}; "
                              "not followed"))
        return True

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for d in dirnames:
            escapes(os.path.join(dirpath, d))  # never walked (followlinks=False)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                path = os.path.join(dirpath, name)
                if not escapes(path):
                    images.append(path)


def _collect_inputs(paths):
    """``(items, early_errors)``: image paths to score, and folders that failed."""
    items, walk_errors, empty, outside = [], [], [], []
    for path in paths:
        if os.path.isdir(path):
            before = len(items)
            _walk_images(path, items, walk_errors, outside)
            if len(items) == before and not outside:
                empty.append(path)
        else:
            items.append(path)  # a missing or bad file is reported by the featurizer
    early = list(outside)
    for where, exc in walk_errors:
        reason = (
            "permission denied (cannot list the folder)"
            if isinstance(exc, PermissionError)
            else f"cannot list the folder ({exc.strerror or exc})"
        )
        early.append((os.fspath(where), reason))
    for folder in empty:
        early.append((os.fspath(folder),
                      "the folder holds no image files (" + _EXTENSIONS + ")"))
    return items, early


def _real_images(folders, command, skip_errors):
    """Image paths of known-real folders, and a note on what was taken.

    A labelled folder (any layout of :func:`skacd.datasets.load_image_folder`)
    contributes its real images only; any other folder every image under it.
    """
    from ..datasets import _detect_layout, load_image_folder

    items, early, n_fake, labelled = [], [], 0, 0
    for folder in folders:
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"the folder {folder!r} does not exist.")
        try:
            _detect_layout(folder)
        except ValueError:  # not a labelled folder: every image is real
            found, errors = _collect_inputs([folder])
            items += found
            early += errors
            continue
        data = load_image_folder(folder)
        target = list(data.target)
        items += [p for p, t in zip(data.paths, target) if t == 0]
        n_fake += sum(1 for t in target if t != 0)
        labelled += 1
    if early and not skip_errors:
        where, reason = early[0]
        raise OSError(
            f"Cannot read {where!r}: {reason}; use --skip-errors to go on without it"
        )
    if early:
        _list_skipped(early, f"{PROG} {command}")
    if not items:
        raise FileNotFoundError(
            "no real images found in " + ", ".join(repr(f) for f in folders)
            + f" (looked for files ending in {_EXTENSIONS})."
        )
    note = ""
    if labelled:
        note = (f"the real class of {labelled} labelled folder(s), {n_fake} "
                "generated images left out")
    return [os.fspath(p) for p in items], early, note
