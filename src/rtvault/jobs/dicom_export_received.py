"""`rtvault export dicom --what received|all`: the objects the DICOM node received (or `dicom import` stored) for a
patient, written into the export's File-set byte for byte as the store holds them (docs/design.md, "DICOM
export", "Received objects").

The patient's received objects are the catalog's `dicom_instances` rows of the store exported from whose DICOM
PatientID is the key given, or the MRN or Pinnacle PatientID of the Pinnacle patient the key names. One object per
SOP instance is written; one the node has not sealed into the store yet, or that cannot be read, is named.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydicom.errors import InvalidDicomError

from rtvault.catalog import dicom as catalog_dicom
from rtvault.catalog.indexer import store_id
from rtvault.config import Config
from rtvault.configured import open_catalog_for
from rtvault.dicom.dicomdir import DicomFileSet, disk_error
from rtvault.dicom.uids import Ids
from rtvault.errors import StoreError
from rtvault.store import Store
from rtvault.store.objects import read_object


def received_of(config: Config, store: Store, patient_ids: Sequence[str]) -> list[catalog_dicom.Held]:
    """The received objects of these PatientIDs the store holds, as the catalog knows them (CatalogError when the
    catalog cannot be read)."""
    with open_catalog_for(config, create=False) as catalog:
        return catalog_dicom.of_patients(catalog, store_id(store), patient_ids)


def received_ids(config: Config, key: str, held: Sequence[catalog_dicom.Held]) -> Ids:
    """The UIDs of an export of received objects alone (its File-set's): derived from the key and what it holds,
    so that the same objects exported twice give the same DICOMDIR."""
    version = hashlib.sha256("\n".join(sorted(h.hash for h in held)).encode()).hexdigest()
    return Ids(config.dicom.uid_root, f"received:{key}", version)


def add_received(store: Store, held: Sequence[catalog_dicom.Held], fileset: DicomFileSet,
                 missing: list[str]) -> int:
    """Stage each received object byte for byte; what cannot be is added to `missing`. Returns how many were."""
    staged = 0
    for item in held:
        what = f"received object {item.sop_instance} ({item.modality or 'no modality'})"
        if item.receipt.startswith(catalog_dicom.SPOOL_PREFIX):
            missing.append(f"{what}: still in the DICOM node's spool, not sealed into the store yet: export again "
                           "in a minute")
            continue
        try:
            fileset.add_file(b"".join(read_object(store.backend, item.hash)))
        except StoreError as error:
            missing.append(f"{what}: {error} (`rtvault verify` and `rtvault repair` heal it from another store)")
            continue
        except (InvalidDicomError, ValueError, TypeError, KeyError, AttributeError, OSError) as error:
            if (full := disk_error(error)) is not None:
                raise full from None  # the staging folder's disk (its caller names it), not this object
            missing.append(f"{what}: no DICOMDIR record can be made for it ({error})")
            continue
        staged += 1
    return staged
