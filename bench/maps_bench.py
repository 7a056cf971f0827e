"""Helper of bench/maps.sh (run by hand, not a test).

  generate KIND OUTDIR ROWS COLS SLICES   write a synthetic DICOM series:
      KIND t2: 12 echoes (TE 10..120 ms), T2 30..150 ms, SNR 50
      KIND t1: 3 recovery times (300, 1000, 3000 ms), T1 600..2000 ms, SNR 50
  scipy KIND DIR SAMPLE                    scipy.optimize.curve_fit per voxel
      (what Python users write) on SAMPLE random object voxels; prints the
      seconds extrapolated to every object voxel (Otsu mask of the same
      reference image we use)
  numpy KIND DIR [REPEATS]                 vectorised numpy log-linear fit of
      every voxel; prints three times: the first fit (data already in
      memory), the whole script (reading the DICOM files with pydicom, then
      that fit: what a Python user's script costs end to end), and the
      fastest of REPEATS−1 further fits in the same interpreter (default 5
      in all; warm: their memory is no longer new)
  memory COMMAND...                        runs COMMAND and samples its
      /proc/PID/status every 0.5 ms; prints the peak VmRSS and the peak
      RssAnon (private memory: heap, stacks) and RssFile (pages of the
      binary and libraries mapped from files, shared with the page cache)
      in kB. A separate run from the timed one: the sampling takes CPU.
"""
import os
import sys
import time

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

TE = np.arange(1, 13) * 10.0
TR = np.array([300.0, 1000.0, 3000.0])


def generate(kind, out, rows, cols, slices):
    rows, cols, slices = int(rows), int(cols), int(slices)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:rows, 0:cols]
    obj = ((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2) < (0.42 * min(rows, cols)) ** 2
    times = TE if kind == "t2" else TR
    k = 0
    for s in range(slices):
        if kind == "t2":
            t2 = 30 + 120 * xx / cols
            clean = [1000 * np.exp(-t / t2) for t in times]
        else:
            t1 = 600 + 1400 * xx / cols
            clean = [1000 * (1 - np.exp(-t / t1)) for t in times]
        for t, img in zip(times, clean):
            sig = np.where(obj, img, 0.0)
            noisy = np.hypot(sig + rng.normal(0, 20, sig.shape), rng.normal(0, 20, sig.shape))
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7778.{k + 1}"
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID = "1.2.826.0.1.3680043.9.7778.0.1"
            ds.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7778.0.2"
            ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.9.7778.0.3"
            ds.Modality = "MR"
            ds.PatientName = "Bench"
            ds.SeriesDescription = f"bench {kind}"
            ds.ImagePositionPatient = [-cols / 2, -rows / 2, 1.5 * s]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [1, 1]
            ds.SliceThickness = 1.5
            if kind == "t2":
                ds.EchoTime = float(t)
                ds.RepetitionTime = 3000.0
            else:
                ds.RepetitionTime = float(t)
                ds.EchoTime = 10.0
            ds.Rows, ds.Columns = rows, cols
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 0
            ds.RescaleSlope, ds.RescaleIntercept = 0.1, 0
            ds.PixelData = np.clip(np.round(noisy / 0.1), 0, 65535).astype("<u2").tobytes()
            ds.save_as(os.path.join(out, f"IM{k:05d}.dcm"), enforce_file_format=True)
            k += 1


def load(kind, folder):
    dss = [pydicom.dcmread(os.path.join(folder, f)) for f in sorted(os.listdir(folder))]
    key = (lambda d: float(d.EchoTime)) if kind == "t2" else (lambda d: float(d.RepetitionTime))
    times = sorted({key(d) for d in dss})
    zs = sorted({float(d.ImagePositionPatient[2]) for d in dss})
    data = np.zeros((len(times), len(zs), dss[0].Rows, dss[0].Columns))
    for d in dss:
        data[times.index(key(d)), zs.index(float(d.ImagePositionPatient[2]))] = d.pixel_array * float(d.RescaleSlope)
    return np.array(times), data.reshape(len(times), -1)


def otsu(values, bins=256):
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w = np.cumsum(hist)[:-1]
    m = np.cumsum(hist * centres)[:-1]
    total, mt = hist.sum(), (hist * centres).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w * (total - w) * (m / w - (mt - m) / (total - w)) ** 2
    return centres[int(np.nanargmax(between))]


def scipy_fit(kind, folder, sample):
    from scipy.optimize import curve_fit
    t, y = load(kind, folder)
    ref = y[0] if kind == "t2" else y[-1]
    idx = np.nonzero(ref > otsu(ref))[0]
    pick = np.random.default_rng(0).choice(idx, size=min(int(sample), idx.size), replace=False)
    if kind == "t2":
        f = lambda t, m0, t2, c: m0 * np.exp(-t / t2) + c
        p0 = lambda s: [s[0], 50.0, 0.0]
    else:
        f = lambda t, a, t1: a * (1 - np.exp(-t / t1))
        p0 = lambda s: [s.max(), 1000.0]
    start = time.perf_counter()
    for i in pick:
        try:
            curve_fit(f, t, y[:, i], p0=p0(y[:, i]), maxfev=2000)
        except RuntimeError:
            pass
    seconds = time.perf_counter() - start
    print(f"{seconds * idx.size / pick.size:.3f} {idx.size} {pick.size}")


def numpy_fit(kind, folder, repeats="5"):
    began = time.perf_counter()
    t, y = load(kind, folder)
    loaded = time.perf_counter() - began
    # The first fit is what a script pays (a fresh process, as ours is):
    # its temporaries are new memory, page-faulted in. Repeats in the same
    # interpreter reuse memory malloc kept and run several times faster;
    # the fastest of them is printed too.
    fits = []
    for _ in range(max(int(repeats), 2)):
        start = time.perf_counter()
        if kind == "t2":
            logy = np.log(np.maximum(y, 1e-6))
            tc = t - t.mean()
            slope = tc @ (logy - logy.mean(axis=0)) / (tc @ tc)
            with np.errstate(divide="ignore"):
                _ = -1.0 / slope
        else:
            # Log-linear on the saturation: ln(1 − S/Smax) = −t/T1.
            smax = y.max(axis=0) * 1.05 + 1e-6
            logy = np.log(np.maximum(1 - y / smax, 1e-6))
            slope = (t @ logy) / (t @ t)
            with np.errstate(divide="ignore"):
                _ = -1.0 / slope
        fits.append(time.perf_counter() - start)
    first, warm = fits[0], min(fits[1:])
    print(f"{first:.3f} {loaded + first:.3f} {warm:.3f}")


def memory(*command):
    import subprocess

    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
    while child.poll() is None:
        try:
            with open(f"/proc/{child.pid}/status") as status:
                for line in status:
                    key, _, value = line.partition(":")
                    if key in peak:
                        peak[key] = max(peak[key], int(value.split()[0]))
        except (OSError, ValueError, IndexError):
            pass  # the child ended between the poll and the read
        time.sleep(0.0005)
    if child.returncode != 0:
        sys.exit(f"memory run failed with exit status {child.returncode}: {' '.join(command)}")
    print(peak["VmRSS"], peak["RssAnon"], peak["RssFile"])


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"generate": generate, "scipy": scipy_fit, "numpy": numpy_fit, "memory": memory}[mode](*args)
