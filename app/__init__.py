"""filefleet: files landing in S3 become searchable documents, on a Spot fleet that scales from zero."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("filefleet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
