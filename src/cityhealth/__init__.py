"""cityhealth: the platform a city's health information center runs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cityhealth")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"
