"""Image sets of a treatment: `ImageSet_N.header`, `.ImageInfo`, the `.img` voxels and the scanner's slices kept in
`ImageSet_N.DICOM/`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtvault.errors import Problem
from rtvault.pinnacle.coordinates import position_of
from rtvault.pinnacle.dates import DateProblem, normalise_datetime
from rtvault.pinnacle.dialects import parse_header
from rtvault.pinnacle.grammar import PObject, parse_bytes
from rtvault.pinnacle.treatment_fields import MAX_VOXELS, integer, number, read_parsed, text
from rtvault.pinnacle.treatment_scanner import check_header, scanner_start
from rtvault.pinnacle.treatment_types import ImageSet, ImageSlice

if TYPE_CHECKING:
    from rtvault.pinnacle.treatment_source import PatientFiles
    from rtvault.pinnacle.treatment_types import PatientPosition


CT_NUMBER_OFFSET = 1000.0  # Pinnacle stores CT numbers: HU + 1000 (water 1000, air 0)


def read_image_set(
    source: PatientFiles, names: set[str], image_id: int, item: PObject | None, problems: list[Problem]
) -> ImageSet:
    """One image set from its header, ImageInfo and ImageSet files; `item` is its entry of the Patient file's
    ImageSetList (None when only on disk)."""
    name = f"ImageSet_{image_id}"
    header = read_parsed(source, names, f"{name}.header", problems, parse_header) or PObject()
    info = read_parsed(source, names, f"{name}.ImageInfo", problems, parse_bytes)
    own = read_parsed(source, names, f"{name}.ImageSet", problems, parse_bytes, required=False)
    dims = _dims(header, name, problems)
    voxel = _triple(header, "pixdim")
    if voxel is not None and min(voxel) <= 0:
        problems.append(Problem(f"{name}.header", f"voxel size {voxel} cm is not positive: geometry unknown"))
        voxel = None
    start = _triple(header, "start")
    start_dicom = (number(header, "x_start_dicom"), number(header, "y_start_dicom"))
    slices = _slices(info, header, dims, name, problems)
    first = slices[0] if slices else None
    position = _position(header, name, problems)
    geometry = None if dims is None or voxel is None or position is None else (dims, voxel, position)
    scanner = scanner_start(source, names, name, slices, geometry, problems)
    start_dicom_cm = None if None in start_dicom else start_dicom
    check_header(name, slices, start_dicom_cm, scanner, position, problems)  # type: ignore[arg-type]
    return ImageSet(
        id=image_id, name=name,
        modality=text(header, "modality") or text(item, "Modality"),
        series_description=text(header, "Series_Description") or text(item, "SeriesDescription"),
        patient_position=position,
        dims=dims, voxel_size_cm=voxel, start_cm=start,
        start_dicom_cm=start_dicom_cm,  # type: ignore[arg-type]
        byte_order=_byte_order(header, name, problems),
        bytes_per_voxel=integer(header, "bytes_pix"),
        version=text(header, "Version"),
        couch_height_cm=number(header, "couch_height"),
        volume_name=text(own, "VolumeName") or text(header, "db_name"),
        series_uid=(first.series_uid if first else "") or text(header, "series_UID"),
        study_uid=first.study_uid if first else "",
        frame_uid=first.frame_uid if first else "",
        scan_datetime=_scan_time(header, item, name, problems),
        manufacturer=text(header, "manufacturer"), model=text(header, "model"),
        slices=slices,
        voxel_file=_voxel_file(source, names, name, dims, integer(header, "bytes_pix"), problems),
        dicom_files=tuple(sorted(n for n in names if n.startswith(f"{name}.DICOM/"))),
        rescale_intercept=-CT_NUMBER_OFFSET, rescale_slope=1.0, scanner_start_cm=scanner,
    )


def _dims(header: PObject, name: str, problems: list[Problem]) -> tuple[int, int, int] | None:
    values = tuple(integer(header, f"{axis}_dim") for axis in "xyz")
    if None in values:
        problems.append(Problem(f"{name}.header", "x_dim, y_dim or z_dim missing: the image set's size is unknown"))
        return None
    if min(values) <= 0 or values[0] * values[1] * values[2] > MAX_VOXELS:  # type: ignore[operator]
        problems.append(Problem(f"{name}.header", f"dimensions {values} are not a usable image size"))
        return None
    return values  # type: ignore[return-value]


def _triple(header: PObject, suffix: str) -> tuple[float, float, float] | None:
    values = tuple(number(header, f"{axis}_{suffix}") for axis in "xyz")
    return None if None in values else values  # type: ignore[return-value]


def _position(header: PObject, name: str, problems: list[Problem]) -> PatientPosition | None:
    written = text(header, "patient_position")
    position = position_of(written)
    if written and position is None:
        problems.append(Problem(f"{name}.header", f"patient_position {written[:20]!r} is not HFS, HFP, FFS or FFP"))
    return position


def _byte_order(header: PObject, name: str, problems: list[Problem]) -> int | None:
    order = integer(header, "byte_order")
    if order not in (0, 1):
        problems.append(Problem(f"{name}.header", f"byte_order {header.get('byte_order')!r} is neither 0 "
                                "(little-endian) nor 1 (big-endian): little-endian assumed"))
        return 0
    return order


def _scan_time(header: PObject, item: PObject | None, name: str, problems: list[Problem]) -> str | None:
    for value, where in ((text(header, "SeriesDateTime"), f"{name}.header"),
                         (text(item, "ScanTimeFromScanner"), "Patient")):
        if value:
            try:
                return normalise_datetime(value)
            except DateProblem as problem:
                problems.append(Problem(where, f"{name} scan time: {problem}"))
    return None


def _slices(
    info: PObject | None, header: PObject, dims: tuple[int, int, int] | None, name: str, problems: list[Problem]
) -> tuple[ImageSlice, ...]:
    entries = [e for e in info.get_all("ImageInfo") if isinstance(e, PObject)] if info is not None else []
    if entries:
        slices = tuple(_slice(k, e) for k, e in enumerate(entries))
        if dims is not None and len(slices) != dims[2]:
            problems.append(Problem(f"{name}.ImageInfo", f"{len(slices)} slices where the header announces "
                                    f"{dims[2]}: slices matched to frames in order"))
        return slices
    z_start, z_pix = number(header, "z_start"), number(header, "z_pixdim")
    if dims is None or z_start is None or z_pix is None:
        return ()
    problems.append(Problem(f"{name}.ImageInfo", "no slice listed: positions from z_start and z_pixdim, "
                            "no scanner UIDs"))
    return tuple(ImageSlice(k, k + 1, z_start + k * z_pix, None, "", "", "", "", "", "") for k in range(dims[2]))


def _slice(index: int, entry: PObject) -> ImageSlice:
    return ImageSlice(
        index=index, slice_number=integer(entry, "SliceNumber"),
        table_position_cm=number(entry, "TablePosition"), couch_position_cm=number(entry, "CouchPos"),
        instance_uid=text(entry, "InstanceUID"), class_uid=text(entry, "ClassUID"),
        series_uid=text(entry, "SeriesUID"), study_uid=text(entry, "StudyInstanceUID"),
        frame_uid=text(entry, "FrameUID"), dicom_file=text(entry, "DICOMFileName"),
    )


def _voxel_file(
    source: PatientFiles, names: set[str], name: str, dims: tuple[int, int, int] | None, bytes_pix: int | None,
    problems: list[Problem],
) -> str | None:
    img = f"{name}.img"
    if img not in names:
        problems.append(Problem(img, "missing: the image set has no voxels (the rest of it is still read)"))
        return None
    if dims is None:
        problems.append(Problem(img, "the header gives no usable size: voxels not read"))
        return None
    if bytes_pix not in (None, 2):
        problems.append(Problem(img, f"{bytes_pix} bytes per voxel: only 16-bit images are read"))
        return None
    expected, size = dims[0] * dims[1] * dims[2] * 2, source.size(img)
    if size != expected:
        problems.append(Problem(img, f"{size} bytes where the header announces {expected} "
                                f"({dims[0]}×{dims[1]}×{dims[2]} 16-bit voxels): voxels not read"))
        return None
    return img
