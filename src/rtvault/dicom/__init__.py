"""DICOM: what rtvault writes (the export of a Pinnacle treatment as DICOM-RT) and the UIDs it derives."""
