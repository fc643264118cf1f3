"""runtime/images: the errors of the image store; each message names the image, blob or file."""


class ImageError(Exception):
    """Any image store, archive or registry failure, with a message meant for the user."""


class ImageNotFound(ImageError):
    """A reference that names no image in the local store."""


class InvalidReference(ImageError):
    """An image reference that does not parse (bad characters, empty name, bad digest)."""


class BlobCorrupted(ImageError):
    """A blob whose content does not match its sha256 digest."""


class RegistryError(ImageError):
    """The registry refused a request or answered something this client cannot use."""
