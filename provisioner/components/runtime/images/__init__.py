"""runtime/images: the local OCI image store, layers, save/load archives and the registry client.

The daemon and the builder use `ImageStore`; `registry` moves images to and from an OCI
distribution registry; `bootstrap` makes the offline images a fresh machine starts with.
"""

from .errors import ImageError, ImageNotFound
from .store import Image, ImageStore, Layer

__all__ = ["Image", "ImageError", "ImageNotFound", "ImageStore", "Layer"]
