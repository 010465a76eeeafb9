"""Images: the content-addressed store, layer unpacking, references, `--change` and busybox bootstrap."""
from tether.image.bootstrap import bootstrap_busybox, busybox_rootfs_tar
from tether.image.store import Image, ImageStore

__all__ = ["Image", "ImageStore", "bootstrap_busybox", "busybox_rootfs_tar"]
