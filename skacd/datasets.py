"""Image folders on disk, and synthetic generator data for tests and examples."""

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._compat import StrOptions, validate_params
from ._synthetic import make_generator_manifolds  # noqa: F401

__all__ = ["load_image_folder", "make_generator_manifolds"]

#: File extensions read as images (compared case-insensitively).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
)

# Operating-system clutter skipped everywhere, besides names starting with ".".
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})

# layout -> (real folder, fake folder)
_CLASS_DIRS = {
    "forensynths": ("0_real", "1_fake"),
    "genimage": ("nature", "ai"),
    "real_fake": ("real", "fake"),
}
_GENIMAGE_SPLITS = ("train", "val")
_MAX_LISTED = 10


def _is_ignored(name):
    return name.startswith(".") or name.lower() in _IGNORED_NAMES


def _subdirs(path):
    """Sorted names of the visible sub-folders of ``path``."""
    return sorted(
        entry.name
        for entry in os.scandir(path)
        if entry.is_dir() and not _is_ignored(entry.name)
    )


def _holds_any(path, names):
    """Whether ``path`` has a visible sub-folder named in ``names``."""
    return not set(names).isdisjoint(_subdirs(path))


def _has_class_dirs(path, layout):
    """Whether ``path`` is a group folder of ``layout``: it holds class folders.

    For GenImage, a group folder holds ``train`` or ``val``, which holds
    ``nature`` or ``ai``.
    """
    if layout == "genimage":
        return any(
            _holds_any(os.path.join(path, split), _CLASS_DIRS["genimage"])
            for split in _GENIMAGE_SPLITS
            if os.path.isdir(os.path.join(path, split))
        )
    return _holds_any(path, _CLASS_DIRS[layout])


def _inside(path, root):
    return os.path.commonpath([os.path.realpath(path), root]) == root


def _list_images(class_dir, other_files, root=None, outside=None):
    """Sorted relative paths of the images found recursively in ``class_dir``.

    Non-image files are appended to ``other_files``. Symbolic links to folders are
    followed, each real folder once. With ``root`` (a real path), links whose
    target lies outside it are not followed: they are appended to ``outside``.
    """
    images = []
    seen = set()

    def escapes(path):
        if root is None or not os.path.islink(path) or _inside(path, root):
            return False
        outside.append(f"{path} -> {os.path.realpath(path)}")
        return True

    if escapes(class_dir.rstrip(os.sep)):
        return images
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(
            d for d in dirnames
            if not _is_ignored(d) and not escapes(os.path.join(dirpath, d))
        )
        for name in sorted(filenames):
            if _is_ignored(name):
                continue
            path = os.path.join(dirpath, name)
            if escapes(path):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                images.append(path)
            else:
                other_files.append(path)
    images.sort(key=lambda p: Path(os.path.relpath(p, class_dir)).as_posix())
    return images


def _has_nested_class_dirs(path, layout):
    """Whether a sub-folder of ``path`` holds class folders of ``layout``."""
    return any(
        _has_class_dirs(os.path.join(path, name), layout) for name in _subdirs(path)
    )


def _is_group(path, layout):
    """Whether ``path`` is a group folder, with class folders in it or one below."""
    return _has_class_dirs(path, layout) or _has_nested_class_dirs(path, layout)


def _class_folders(group_dir, layout, split, other_files):
    """``[(class_dir, target, split_name), ...]`` for one group folder.

    Class folders are looked for in ``group_dir`` or, failing that, in each of
    its sub-folders (pooled). Sub-folders that belong to no class are reported
    in ``other_files``.
    """
    names = _subdirs(group_dir)
    if not _has_class_dirs(group_dir, layout):
        folders = []
        for name in names:
            sub = os.path.join(group_dir, name)
            if _has_class_dirs(sub, layout):
                folders.extend(_class_folders(sub, layout, split, other_files))
            else:
                other_files.append(sub)
        return folders

    real, fake = _CLASS_DIRS[layout]
    if layout != "genimage":
        for name in names:
            if name not in (real, fake):
                other_files.append(os.path.join(group_dir, name))
        return [
            (os.path.join(group_dir, cls), target, None)
            for target, cls in enumerate((real, fake))
            if cls in names
        ]

    for name in names:
        if name not in _GENIMAGE_SPLITS:
            other_files.append(os.path.join(group_dir, name))
    folders = []
    for split_name in _GENIMAGE_SPLITS if split is None else (split,):
        split_dir = os.path.join(group_dir, split_name)
        if not os.path.isdir(split_dir):
            continue
        inner = _subdirs(split_dir)
        for name in inner:
            if name not in (real, fake):
                other_files.append(os.path.join(split_dir, name))
        for target, cls in enumerate((real, fake)):
            if cls in inner:
                folders.append((os.path.join(split_dir, cls), target, split_name))
    return folders


_LAYOUT_ORDER = ("forensynths", "real_fake", "genimage")


def _detect_layout(root):
    """Layout name of ``root`` and whether ``root`` itself is the (only) group."""
    for layout in _LAYOUT_ORDER:
        if _has_class_dirs(root, layout):
            return layout, True
    children = [os.path.join(root, name) for name in _subdirs(root)]
    for layout in _LAYOUT_ORDER:
        if any(_has_class_dirs(child, layout) for child in children):
            return layout, False
    for layout in _LAYOUT_ORDER:
        if any(_has_nested_class_dirs(child, layout) for child in children):
            return layout, False
    raise ValueError(
        f"Cannot detect the image folder layout of {root!r}. Expected one of: "
        "'forensynths' (<root>/<group>/{0_real,1_fake}/... or "
        "<root>/{0_real,1_fake}/...), "
        "'genimage' (<root>/<generator>/{train,val}/{nature,ai}/...) or "
        "'real_fake' (<root>/{real,fake}/... or <root>/<group>/{real,fake}/...), "
        "with at most one more folder level between a group and its class folders."
    )


def _root_is_group(root, layout):
    """For an explicit ``layout``: is ``root`` itself the group, or its children?"""
    if _has_class_dirs(root, layout):
        return True
    if any(_is_group(os.path.join(root, name), layout) for name in _subdirs(root)):
        return False
    real, fake = _CLASS_DIRS[layout]
    where = (
        f"{{train,val}}/{{{real},{fake}}}" if layout == "genimage" else
        f"{{{real},{fake}}}"
    )
    raise ValueError(
        f"{root!r} does not follow the {layout!r} layout: no {where} folders were "
        "found in it, in its sub-folders or in theirs."
    )


def _format_paths(paths):
    listed = "\n  ".join(paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    if more > 0:
        listed += f"\n  ... and {more} more"
    return listed


@validate_params(
    {
        "root": [str, os.PathLike, list, tuple],
        "layout": [StrOptions({"auto", "forensynths", "genimage", "real_fake"})],
        "split": [StrOptions(set(_GENIMAGE_SPLITS)), None],
        "on_other_files": [StrOptions({"raise", "ignore"})],
        "follow_symlinks": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def load_image_folder(root, layout="auto", *, split=None, on_other_files="raise",
                      follow_symlinks=False):
    """Load the file paths, labels and groups of a folder of real and fake images.

    Only the folder tree is read: no image is opened. Feed ``paths`` to a
    featurizer, ``target`` to a classifier and ``groups`` to
    :class:`~skacd.model_selection.CrossGeneratorSplit` or
    :func:`~skacd.metrics.detection_report`.

    Parameters
    ----------
    root : str, path-like or list of them
        The folder to read. With a list, the folders are read in turn and
        concatenated; group names then stay unambiguous (see Notes).

    layout : {"auto", "forensynths", "genimage", "real_fake"}, default="auto"
        How the folder is organised. ``"auto"`` detects it for each root; the
        others force it. A group is a folder that holds the class folders,
        named after that folder:

        - ``"forensynths"`` (ForenSynths, CNNDetection, UnivFD):
          ``<root>/<group>/{0_real,1_fake}/...``.
        - ``"genimage"`` (GenImage):
          ``<root>/<generator>/{train,val}/{nature,ai}/...``.
        - ``"real_fake"``: ``<root>/<group>/{real,fake}/...``.

        In every layout ``root`` may itself be the group
        (``<root>/{0_real,1_fake}/...``; the group is then the name of
        ``root``), and one more folder level may lie between a group and its
        class folders, pooled into the group: the CNNDetection test set
        ``<root>/stylegan/{bedroom,car,cat}/{0_real,1_fake}/...`` gives one
        group ``"stylegan"``, and GenImage's
        ``<root>/BigGAN/imagenet_ai_0419_biggan/{train,val}/...`` one group
        ``"BigGAN"``.

        Detection looks at ``root`` itself first (``0_real``/``1_fake``, then
        ``real``/``fake``, then GenImage's ``train``/``val`` holding
        ``nature``/``ai``), then at its sub-folders in the same order, then at
        their sub-folders.

    split : {"train", "val"} or None, default=None
        GenImage only: read this split. None reads both; the Bunch then holds a
        ``split`` array telling them apart (they share the generator's group).
        Passing a split with another layout raises a ``ValueError``.

    on_other_files : {"raise", "ignore"}, default="raise"
        What to do with files that are not images inside the class folders,
        and with folders that fit nowhere in the layout: a sub-folder of
        ``root`` that is no group, or a sub-folder of a group that is no class
        folder (such as a stray ``2_other``). ``"raise"`` raises a
        ``ValueError`` listing them; ``"ignore"`` skips them. Hidden files
        and folders (names starting with ``"."``, such as ``.DS_Store``) and
        ``Thumbs.db`` and ``desktop.ini`` are always skipped. Plain files
        beside the group folders (a ``README.md`` in ``root``) are never read.
    follow_symlinks : bool, default=False
        Whether to follow symbolic links whose target lies outside the root
        they are found in. By default such a link is an error naming it (a
        link to ``/`` would otherwise list every image on the machine); links
        inside the root are always followed.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        paths : list of str
            The image files. Ordered by root (in the order given), group
            name, class (real before fake), GenImage split, then the path
            relative to the class folder; the order does not depend on the
            file system.
        target : ndarray of shape (n_images,), dtype=int
            0 for a real image, 1 for a generated one.
        groups : ndarray of shape (n_images,), dtype=str
            The group (generator or subset) of each image.
        target_names : list of str
            ``["real", "fake"]``, indexed by ``target``.
        layout : str or list of str
            The layout used. With several roots of different layouts, a list
            with one name per root.
        split : ndarray of shape (n_images,), dtype=str
            Only when a root has the GenImage layout: ``"train"`` or
            ``"val"`` (``""`` for the images of other layouts).

    Raises
    ------
    FileNotFoundError
        If a root does not exist or is not a folder.
    ValueError
        If the layout cannot be detected or is not followed, a class folder
        holds no image, non-image files are found with
        ``on_other_files="raise"``, two roots share image files, or a
        symbolic link points outside its root with ``follow_symlinks=False``.

    See Also
    --------
    make_generator_manifolds : Synthetic features of real and generated images.
    skacd.model_selection.CrossGeneratorSplit : Train on some groups, test on the
        others.
    skacd.metrics.detection_report : Per-group AP and accuracies.

    Notes
    -----
    Images are files ending in ``.jpg``, ``.jpeg``, ``.png``, ``.bmp``,
    ``.webp``, ``.gif``, ``.tif`` or ``.tiff``, in any letter case, found
    recursively inside the class folders. Symbolic links are followed inside
    each root, and outside it only with ``follow_symlinks=True``.

    Group names. With one root, a group is named after its folder, such as
    ``"cyclegan"``. With several roots, a group is named by its folder's path
    relative to the deepest folder that contains every root, in POSIX form:
    ``[".../sd-coco", ".../forensynths"]`` gives ``"sd-coco/train"``,
    ``"sd-coco/val"``, ``"forensynths/cyclegan"`` and so on, while
    ``[".../sd-coco/train", ".../sd-coco/val"]`` gives ``"train"`` and
    ``"val"``. Distinct folders thus never share a group name.

    For the ProGAN training set (``progan_train/<class>/{0_real,1_fake}``),
    passing ``progan_train`` gives one group per object class; passing its
    parent folder pools the classes into one group ``"progan_train"``. For the
    same reason, a folder of datasets such as ``../shared/data`` pools each
    dataset's splits into one group: pass the datasets as a list instead.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from skacd.datasets import load_image_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for group in ["gaugan", "stargan"]:
    ...     for cls in ["0_real", "1_fake"]:
    ...         folder = Path(tmp.name, group, cls)
    ...         folder.mkdir(parents=True)
    ...         for i in range(2):
    ...             Image.new("RGB", (8, 8)).save(folder / f"{i}.png")
    >>> data = load_image_folder(tmp.name)
    >>> data.layout
    'forensynths'
    >>> data.target
    array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> data.groups
    array(['gaugan', 'gaugan', 'gaugan', 'gaugan', 'stargan', 'stargan',
           'stargan', 'stargan'], dtype='<U7')
    >>> Path(data.paths[2]).relative_to(tmp.name).as_posix()
    'gaugan/1_fake/0.png'
    >>> tmp.cleanup()
    """
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if not roots:
        raise ValueError("'root' is an empty list: pass at least one folder.")
    if split is not None and layout not in ("auto", "genimage"):
        raise ValueError(
            f"split={split!r} applies to the 'genimage' layout only, not to "
            f"layout={layout!r}."
        )
    roots = [os.fspath(r) for r in roots]
    for r in roots:
        if not isinstance(r, str):
            raise TypeError(f"Each root must be a str or path-like, got {r!r}.")
        if not os.path.exists(r):
            raise FileNotFoundError(f"Image folder {r!r} does not exist.")
        if not os.path.isdir(r):
            raise FileNotFoundError(f"Image folder {r!r} is not a folder.")

    abs_roots = [os.path.abspath(r) for r in roots]
    if len(roots) > 1:
        base = os.path.commonpath([os.path.dirname(r) for r in abs_roots])
    paths, targets, groups, splits, layouts = [], [], [], [], []
    other_files, empty, no_class, outside = [], [], [], []
    for r in roots:
        if layout == "auto":
            root_layout, root_is_group = _detect_layout(r)
        else:
            root_layout, root_is_group = layout, _root_is_group(r, layout)
        if split is not None and root_layout != "genimage":
            raise ValueError(
                f"split={split!r} applies to the 'genimage' layout only, but "
                f"{r!r} has the {root_layout!r} layout."
            )
        layouts.append(root_layout)
        if root_is_group:
            group_dirs = [r]
        else:
            group_dirs = []
            for name in _subdirs(r):
                child = os.path.join(r, name)
                if _is_group(child, root_layout):
                    group_dirs.append(child)
                else:
                    other_files.append(child)
        entries = []
        for group_dir in group_dirs:
            if len(roots) > 1:
                rel = os.path.relpath(os.path.abspath(group_dir), base)
                name = Path(rel).as_posix()
            else:
                name = os.path.basename(os.path.abspath(group_dir))
            class_folders = _class_folders(group_dir, root_layout, split, other_files)
            if not class_folders:
                no_class.append(group_dir)
            for class_dir, target, split_name in class_folders:
                images = _list_images(
                    class_dir,
                    other_files,
                    root=None if follow_symlinks else os.path.realpath(r),
                    outside=outside,
                )
                if not images:
                    empty.append(class_dir)
                order = split_name or ""
                entries.extend(
                    ((name, target, order), p, target, name, split_name)
                    for p in images
                )
        # Stable sort: within a key the files keep their sorted relative order.
        entries.sort(key=lambda e: e[0])
        for _, p, target, name, split_name in entries:
            paths.append(p)
            targets.append(target)
            groups.append(name)
            splits.append(split_name)

    if outside:
        raise ValueError(
            "These symbolic links point outside the folder they are in, and are "
            "not followed (pass follow_symlinks=True, or skacd fit "
            "--follow-symlinks, to read them):\n  " + _format_paths(outside)
        )
    if no_class:
        raise ValueError(
            f"These group folders hold no {split!r} split:\n  "
            + _format_paths(no_class)
        )
    if empty:
        raise ValueError(
            "These class folders hold no image (extensions "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}):\n  " + _format_paths(empty)
        )
    if other_files and on_other_files == "raise":
        raise ValueError(
            f"Found {len(other_files)} non-image file(s) or unexpected folder(s); "
            "remove them or pass on_other_files='ignore':\n  "
            + _format_paths(other_files)
        )
    if not paths:
        raise ValueError(f"No images were found under {roots!r}.")
    # Overlapping roots (one inside another) would list files twice.
    real_paths = [os.path.realpath(p) for p in paths] if len(roots) > 1 else paths
    if len(set(real_paths)) != len(real_paths):
        seen, dup = set(), []
        for p, rp in zip(paths, real_paths):
            if rp in seen:
                dup.append(p)
            seen.add(rp)
        raise ValueError(
            "The same image files were found more than once; do the roots "
            "overlap?\n  " + _format_paths(dup)
        )

    data = Bunch(
        paths=paths,
        target=np.asarray(targets, dtype=int),
        groups=np.asarray(groups, dtype=str),
        target_names=["real", "fake"],
        layout=layouts[0] if len(set(layouts)) == 1 else layouts,
    )
    if "genimage" in layouts:
        data.split = np.asarray([s or "" for s in splits], dtype=str)
    return data
