"""Cross-check xnatkit's ParaVision -> DICOM output with pydicom and brkraw 0.5.7.

Usage: crosscheck.py OUT_DIR [STUDY_DIR EXPNO RECO GROUPS]...

Every *.dcm under OUT_DIR must read in pydicom with a sane pixel array and
rescale. For each (STUDY_DIR, EXPNO, RECO, GROUPS) brkraw reads the same
ParaVision reconstruction; its raw data and "raw" affine must match our
stored pixels (16-bit data only: stored as-is) and IPP/IOP/PixelSpacing.
GROUPS lists the frame groups, first fastest, e.g. FG_ECHO:3,FG_SLICE:2.
Exits non-zero with a message on the first mismatch.
"""

import pathlib
import sys

import numpy as np
import pydicom

CEST_CREATOR = "XNAT-PIC CEST"


def fail(message):
    print(f"MISMATCH: {message}")
    sys.exit(1)


def read_all(out_dir):
    files = sorted(pathlib.Path(out_dir).rglob("*.dcm"))
    if not files:
        fail(f"no DICOM files under {out_dir}")
    cest_files = 0
    for path in files:
        ds = pydicom.dcmread(path)
        if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.4":
            fail(f"{path}: SOP class {ds.SOPClassUID}")
        pixels = ds.pixel_array
        if pixels.shape != (ds.Rows, ds.Columns):
            fail(f"{path}: pixel array {pixels.shape}")
        float(ds.RescaleSlope)
        float(ds.RescaleIntercept)
        if (0x1061, 0x0010) in ds:
            block = ds.private_block(0x1061, CEST_CREATOR)
            hz = float(block[0x14].value)
            ppm = float(block[0x15].value)
            mhz = float(ds.ImagingFrequency)
            if abs(hz / mhz - ppm) > 1e-6 * max(1.0, abs(ppm)):
                fail(f"{path}: offset {hz} Hz is not {ppm} ppm at {mhz} MHz")
            cest_files += 1
    print(f"pydicom read {len(files)} files ({cest_files} with the CEST block)")


def series(out_dir, expno, reco):
    files = sorted((pathlib.Path(out_dir) / expno / reco).glob("*.dcm"))
    return [pydicom.dcmread(f) for f in files]


def check_brkraw(out_dir, study, expno, reco, groups):
    from brkraw import BrukerLoader

    loader = BrukerLoader(study)
    data = np.asarray(loader.get_dataobj(int(expno), int(reco)))
    images = series(out_dir, expno, reco)
    # Our files are in stored-frame order; rebuild (x, y, g0, g1, ...) and
    # move FG_SLICE to axis 2 as brkraw does.
    names = [g.split(":")[0] for g in groups.split(",")]
    lengths = [int(g.split(":")[1]) for g in groups.split(",")]
    stack = np.stack([ds.pixel_array.T for ds in images], axis=-1)
    ours = stack.reshape(stack.shape[:2] + tuple(lengths), order="F")
    if "FG_SLICE" in names:
        ours = np.moveaxis(ours, 2 + names.index("FG_SLICE"), 2)
    ours = ours.reshape(data.shape)
    if not np.array_equal(ours.astype(np.int64), data.astype(np.int64)):
        fail(f"{study} {expno}/{reco}: stored pixels differ from brkraw get_dataobj")
    affine = np.asarray(loader.get_affine(int(expno), int(reco), space="raw"))
    first = images[0]
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    spacing = [float(v) for v in first.PixelSpacing]
    col_step = affine[:3, 0]
    row_step = affine[:3, 1]
    if not np.allclose(col_step, iop[:3] * spacing[1], atol=1e-6):
        fail(f"{expno}/{reco}: x axis {col_step} vs IOP {iop[:3]} x {spacing[1]}")
    if not np.allclose(row_step, iop[3:] * spacing[0], atol=1e-6):
        fail(f"{expno}/{reco}: y axis {row_step} vs IOP {iop[3:]} x {spacing[0]}")
    normal = np.cross(iop[:3], iop[3:])
    positions = [np.array([float(v) for v in ds.ImagePositionPatient]) for ds in images]
    lowest = min(positions, key=lambda p: float(np.dot(p, normal)))
    if not np.allclose(affine[:3, 3], lowest, atol=1e-6):
        fail(f"{expno}/{reco}: origin {affine[:3, 3]} vs lowest IPP {lowest}")
    print(f"brkraw agrees on {study} {expno}/{reco}: data {data.shape}, affine")


def main(argv):
    out_dir = argv[1]
    read_all(out_dir)
    rest = argv[2:]
    if len(rest) % 4:
        fail("brkraw checks need STUDY_DIR EXPNO RECO GROUPS")
    for i in range(0, len(rest), 4):
        check_brkraw(out_dir, *rest[i : i + 4])
    print("OK")


if __name__ == "__main__":
    main(sys.argv)
