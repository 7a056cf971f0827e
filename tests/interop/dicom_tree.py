"""Small synthetic DICOM files for upload tests, written with pydicom.

Each file is a valid Part-10 image (explicit VR little endian, 16x16 pixels)
whose identifying fields come from the caller, so the tests can predict the
subject, session and scan an uploader derives from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SOP_CLASS = {
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
}


def write_instance(path: Path, *, patient_name: str, patient_id: str, study_date: str, study_uid: str,
                   series_uid: str, series_number: int, instance_number: int, modality: str,
                   series_description: str) -> None:
    sop_instance_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()

    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_instance_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.StudyInstanceUID = study_uid
    ds.StudyDescription = "Interop study"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.InstanceNumber = instance_number
    ds.Modality = modality
    ds.Manufacturer = "xnatkit-tests"
    ds.ManufacturerModelName = "synthetic"
    ds.StationName = "LOOPBACK"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    pixels = (np.arange(256, dtype=np.uint16).reshape(16, 16) + instance_number * 7)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_series(directory: Path, count: int, **fields) -> list[Path]:
    """Writes `count` instances of one series as scan0000.dcm, scan0001.dcm, …"""
    series_uid = generate_uid()
    paths = []
    for index in range(count):
        path = directory / f"scan{index:04d}.dcm"
        write_instance(path, series_uid=series_uid, instance_number=index + 1, **fields)
        paths.append(path)
    return paths
