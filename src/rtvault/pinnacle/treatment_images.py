"""Image sets of a treatment: `ImageSet_N.header`, `.ImageInfo`, the `.img` voxels and the scanner's slices kept in
`ImageSet_N.DICOM/`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rtvault.errors import PartialResult

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_source import PatientFiles
    from rtvault.pinnacle.treatment_types import ImageSet


def load_voxels(source: PatientFiles, image: ImageSet) -> np.ndarray | None:
    """The `.img` as int16 (z, y, x) in the header's byte order; None when the model found no usable `.img`
    (a problem already says why); PartialResult when the file can no longer be read."""
    if image.voxel_file is None or image.dims is None:
        return None
    nx, ny, nz = image.dims
    try:
        data = source.read(image.voxel_file)
    except OSError as error:
        raise PartialResult(f"{image.voxel_file}: cannot be read ({error.strerror or error}): the image set's "
                            "voxels are left out; check the source and run again.") from error
    if len(data) != nx * ny * nz * 2:
        raise PartialResult(f"{image.voxel_file}: {len(data)} bytes where the header announces {nx * ny * nz * 2}: "
                            "the image set's voxels are left out.")
    dtype = np.dtype(">i2" if image.byte_order == 1 else "<i2")
    return np.frombuffer(data, dtype=dtype).reshape(nz, ny, nx)
