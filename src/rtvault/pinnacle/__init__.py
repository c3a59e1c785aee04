"""Reading Philips Pinnacle databases: the text grammar and its dialects, discovery of institutions and
patients, and per-patient metadata. Read-only: nothing here ever writes under a Pinnacle root."""

from rtvault.pinnacle.discover import scan
from rtvault.pinnacle.grammar import ParseResult, PObject, parse_bytes, parse_file
from rtvault.pinnacle.model import ImageSetInfo, PatientRecord, PlanInfo, ScanResult

__all__ = [
    "ImageSetInfo",
    "PObject",
    "ParseResult",
    "PatientRecord",
    "PlanInfo",
    "ScanResult",
    "parse_bytes",
    "parse_file",
    "scan",
]
