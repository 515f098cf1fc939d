"""The package version, apart from `mwe/__init__.py` so modules can name it without importing the package front."""

__version__ = "0.1.0"
