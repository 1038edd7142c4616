"""Object storage over fsspec: avatar meshes and photos on ``memory://``, ``file://`` or
``s3://`` (S3 needs the ``s3`` extra), optionally one location per region.

>>> store = FsspecObjectStore("memory://fittwin-doctest")
>>> store.put("avatars/u1/v1.glb", b"glTF", content_type="model/gltf-binary").size
4
>>> store.get("avatars/u1/v1.glb")
b'glTF'
>>> store.delete("avatars/u1/v1.glb")
"""

from fittwin_adapters.objectstore.faults import InjectedUploadFailure, InterruptedObjectStore
from fittwin_adapters.objectstore.keys import check_object_key
from fittwin_adapters.objectstore.store import (
    DEFAULT_CONTENT_TYPE,
    MAX_EXPIRES_IN,
    FsspecObjectStore,
    checksum,
)

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "MAX_EXPIRES_IN",
    "FsspecObjectStore",
    "InjectedUploadFailure",
    "InterruptedObjectStore",
    "check_object_key",
    "checksum",
]
