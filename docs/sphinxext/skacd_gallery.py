"""Order of the gallery examples: from first steps to specialised questions."""

from sphinx_gallery.sorting import FileNameSortKey

ORDER = [
    "plot_quick_start.py",
    "plot_cross_generator_grid_search.py",
    "plot_diagnostics.py",
    "plot_robustness.py",
    "plot_operating_point.py",
]


class ExampleOrder(FileNameSortKey):
    """Sort examples by their position in ``ORDER``; unlisted ones come last.

    Parameters
    ----------
    src_dir : str or pathlib.Path
        The gallery's source folder.
    """

    def __call__(self, filename):
        name = str(filename).rsplit("/", 1)[-1]
        position = ORDER.index(name) if name in ORDER else len(ORDER)
        return f"{position:03d}-{name}"
