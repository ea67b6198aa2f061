"""The `asl` command line. `__version__` is the package's version, read from here by
the build (pyproject.toml) and by `asl --version`, which so needs no package metadata."""

__version__ = "0.1.0"
