"""Independent reference implementations for xnatkit-maps' cross-checks.

Written from the published definitions with numpy/pydicom/dipy/rt-utils,
sharing no code with the Rust crate. Every mode prints one JSON object.

  adc DICOMDIR OURDIR        ADC: b-values grouped by the documented rule, the
                             directions' geometric mean fitted with SciPy's
                             curve_fit, and dipy's tensor mean diffusivity,
                             compared with OURDIR/ADC_map.nii.gz
  rule DICOMDIR RTFILE       masks by the documented rule (plane distance,
                             pixel centres, even-odd, boundary inside)
  rtutils DICOMDIR RTFILE    masks as rt-utils rasterises them
  make-grid RTFILE OUTDIR    a synthetic CT series in the RTSTRUCT's frame of
                             reference covering its contours (1 mm pixels,
                             one slice per contour plane)
  make-oblique-rt DICOMDIR OUT  an RTSTRUCT with a polygon on every slice of an
                             oblique series (pydicom, patient coordinates)
  make-dwi OUTDIR            dipy's real DWI crop small_64D as a classic MR
                             DICOM series (standard diffusion tags)
Masks are printed as {roi name: [[col, row, slice], ...]} with slices sorted
ascending along the slice normal (xnatkit-maps' grid order).
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def images(folder):
    out = []
    for root, _, files in os.walk(folder):
        for f in sorted(files):
            try:
                ds = pydicom.dcmread(os.path.join(root, f))
            except Exception:
                continue
            if "PixelData" in ds:
                out.append(ds)
    return out


def geometry(ds):
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    r, c = iop[:3], iop[3:]
    n = np.cross(r, c)
    return r, c, n


def b_value(ds):
    b = ds.get("DiffusionBValue")
    if b is not None and str(b) != "":
        return float(b)
    ge = ds.get((0x0043, 0x1039))
    if ge is not None:
        v = float(ge.value[0])
        return v % 1e9 if v >= 1e9 else v
    raise SystemExit("no b-value")


def direction(d):
    """The gradient direction: the standard tag, else GE's private ones."""
    if "DiffusionGradientOrientation" in d:
        return tuple(float(x) for x in d.DiffusionGradientOrientation)
    if (0x0019, 0x10BB) in d:
        return tuple(float(d.get((0x0019, tag)).value) for tag in (0x10BB, 0x10BC, 0x10BD))
    return (0.0, 0.0, 0.0)


def make_dwi(outdir):
    """dipy's real DWI crop `small_64D` (b = 0 and 64 directions at
    b = 990-1000 s/mm2) as a classic MR DICOM series: one file per slice
    and volume, the b-value in DiffusionBValue (FD), the direction in
    DiffusionGradientOrientation, the geometry from the NIfTI affine
    (RAS -> LPS)."""
    import warnings

    import nibabel
    from dipy.data import get_fnames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fimg, fbval, fbvec = get_fnames(name="small_64D")
    img = nibabel.load(fimg)
    data = np.asarray(img.dataobj)
    bvals = np.loadtxt(fbval)
    bvecs = np.loadtxt(fbvec)
    if bvecs.shape[0] == 3 and bvecs.shape[1] != 3:
        bvecs = bvecs.T
    # The b = 0 volume's direction is stored as NaN (0/0 normalised).
    bvecs = np.nan_to_num(bvecs, nan=0.0)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    col_step, row_step = lps[:3, 0], lps[:3, 1]
    dcol, drow = np.linalg.norm(col_step), np.linalg.norm(row_step)
    r, c = col_step / dcol, row_step / drow
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    os.makedirs(outdir, exist_ok=True)
    nx, ny, nz, nt = data.shape
    number = 0
    for t in range(nt):
        for k in range(nz):
            number += 1
            ipp = lps @ np.array([0.0, 0.0, k, 1.0])
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            path = os.path.join(outdir, f"IM{number:05d}.dcm")
            ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
            ds.SOPClassUID = meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.Modality = "MR"
            ds.PatientName = "dipy^small_64D"
            ds.PatientID = "small_64D"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.SeriesNumber, ds.InstanceNumber = 1, number
            ds.SeriesDescription = "DTI 64 directions"
            ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*r, *c)]
            ds.ImagePositionPatient = [f"{v:.6f}" for v in ipp[:3]]
            ds.PixelSpacing = [f"{drow:.6f}", f"{dcol:.6f}"]
            ds.SliceThickness = f"{np.linalg.norm(lps[:3, 2]):.6f}"
            ds.Rows, ds.Columns = ny, nx
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.DiffusionBValue = float(bvals[t])
            ds.DiffusionGradientOrientation = [float(v) for v in bvecs[t]]
            ds.DiffusionDirectionality = "NONE" if bvals[t] < 50 else "DIRECTIONAL"
            ds.PixelData = np.ascontiguousarray(data[:, :, k, t].T).astype(np.uint16).tobytes()
            ds.save_as(path, enforce_file_format=True)
    print(json.dumps({"files": number, "volumes": int(nt), "b_values": sorted({float(b) for b in bvals})}))


def load_ours(path):
    import nibabel
    return np.asarray(nibabel.load(path).dataobj, dtype=np.float64)


def clusters(values, tolerance):
    """The documented grouping of b-values (and echo/recovery times): sorted,
    a value within `tolerance` of a group's first joins it; a group stands
    for its members' mean."""
    groups = []
    for v in sorted(values):
        if groups and abs(v - groups[-1][0]) <= tolerance(groups[-1][0]):
            groups[-1].append(v)
        else:
            groups.append([v])
    return [float(np.mean(g)) for g in groups], [(g[0], g[-1]) for g in groups]


def adc(folder, ours_dir):
    from scipy.optimize import curve_fit

    dss = images(folder)
    r, c, n = geometry(dss[0])
    heights = sorted({round(float(np.dot(n, [float(v) for v in d.ImagePositionPatient])), 3) for d in dss})
    tol = lambda v: 1e-3 * max(abs(v), 1.0)
    bvals, ranges = clusters([b_value(d) for d in dss], tol)
    rows, cols = dss[0].Rows, dss[0].Columns
    logsum = np.zeros((len(bvals), len(heights), rows, cols))
    count = np.zeros((len(bvals), len(heights)))
    volumes = {}
    for d in dss:
        s = heights.index(round(float(np.dot(n, [float(v) for v in d.ImagePositionPatient])), 3))
        b = next(i for i, (low, high) in enumerate(ranges) if low <= b_value(d) <= high)
        img = d.pixel_array.astype(np.float64) * float(d.get("RescaleSlope", 1) or 1) + float(d.get("RescaleIntercept", 0) or 0)
        logsum[b, s] += np.log(np.maximum(img, np.finfo(np.float32).tiny))
        count[b, s] += 1
        key = (b_value(d), direction(d))
        volumes.setdefault(key, [None] * len(heights))[s] = img
    # The directions' geometric mean per b-value group, then S0·exp(−b·ADC)
    # fitted in the signal domain (SciPy's Levenberg-Marquardt), from an
    # ordinary log-linear start.
    signal = np.exp(logsum / count[:, :, None, None])  # (b, slices, rows, cols)
    bs = np.array(bvals)
    numpy_adc = np.zeros(signal.shape[1:])
    ours = load_ours(os.path.join(ours_dir, "ADC_map.nii.gz"))  # (cols, rows, slices)
    valid = load_ours(os.path.join(ours_dir, "ADC_valid.nii.gz")) > 0
    # Fitted where ours is valid, the only voxels compared.
    for col, row, sl in np.argwhere(valid):
        idx = (sl, row, col)
        y = signal[(slice(None),) + idx]
        if np.all(y <= 0):
            continue
        pos = y > 0
        slope, icpt = np.polyfit(bs[pos], np.log(y[pos]), 1) if pos.sum() >= 2 else (0.0, 0.0)
        try:
            (s0, rate), _ = curve_fit(lambda b, s0, rate: s0 * np.exp(-b * rate), bs, y,
                                      p0=(np.exp(icpt), -slope), method="lm", xtol=1e-12, ftol=1e-12)
        except RuntimeError:
            continue
        numpy_adc[idx] = rate
    ref = np.transpose(numpy_adc, (2, 1, 0))
    # Relative, with a floor of 1e-6 mm²/s (0.1 % of a brain's ADC) so a
    # map of zeros (the GE volumes are identical) compares absolutely.
    diff = (np.abs(ours - ref) / (np.abs(ref) + 1e-6))[valid]
    # dipy: the tensor's mean diffusivity from every volume.
    from dipy.core.gradients import gradient_table
    import dipy.reconst.dti as dti
    keys = sorted(volumes)
    data = np.stack([np.stack(volumes[k], axis=-1).transpose(1, 0, 2) for k in keys], axis=-1)  # (cols, rows, slices, N)
    bv = np.array([k[0] for k in keys])
    bvec = np.array([k[1] for k in keys])
    norms = np.linalg.norm(bvec, axis=1)
    bvec[norms > 0] /= norms[norms > 0, None]
    gtab = gradient_table(bv, bvecs=bvec, b0_threshold=50)
    fit = dti.TensorModel(gtab, fit_method="OLS").fit(np.maximum(data, 1e-6), mask=valid)
    md = fit.md
    md_diff = np.abs(ours - md)[valid]
    print(json.dumps({
        "voxels": int(valid.sum()),
        "b_values": bvals,
        "reference_max_rel_diff": float(diff.max()) if diff.size else 0.0,
        "reference_max_abs_diff": float(np.abs(ours - ref)[valid].max()) if valid.any() else 0.0,
        "numpy_median_ours": float(np.median(ours[valid])) if valid.any() else 0.0,
        "dipy_max_abs_diff": float(md_diff.max()) if md_diff.size else 0.0,
        "dipy_median_md": float(np.median(md[valid])) if valid.any() else 0.0,
        "volumes": len(keys),
        "dipy_median_rel_diff": float(np.median(md_diff / np.maximum(md[valid], 1e-12))) if valid.any() else 0.0,
        # None where either side is constant (the GE volumes are identical).
        "dipy_correlation": float(np.corrcoef(ours[valid], md[valid])[0, 1])
        if valid.sum() > 2 and np.std(ours[valid]) > 0 and np.std(md[valid]) > 0 else None,
    }))


def sorted_series(folder):
    dss = images(folder)
    r, c, n = geometry(dss[0])
    dss.sort(key=lambda d: float(np.dot(n, [float(v) for v in d.ImagePositionPatient])))
    return dss, r, c, n


def on_segment(px, py, ax, ay, bx, by, eps=1e-6):
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(l2 > 0, ((px - ax) * dx + (py - ay) * dy) / np.where(l2 > 0, l2, 1), 0)
    qx, qy = ax + t * dx, ay + t * dy
    return (t >= -1e-12) & (t <= 1 + 1e-12) & (np.abs(px - qx) <= eps) & (np.abs(py - qy) <= eps)


def polygon_mask(poly, rows, cols):
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float64)
    inside = np.zeros((rows, cols), dtype=bool)
    boundary = np.zeros((rows, cols), dtype=bool)
    m = len(poly)
    for k in range(m):
        ax, ay = poly[k]
        bx, by = poly[(k + 1) % m]
        boundary |= on_segment(xs, ys, ax, ay, bx, by)
        crosses = (ay > ys) != (by > ys)
        with np.errstate(invalid="ignore", divide="ignore"):
            x_at = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < x_at)
    return inside | boundary


def rule(folder, rtfile):
    dss, r, c, n = sorted_series(folder)
    rows, cols = dss[0].Rows, dss[0].Columns
    drow, dcol = (float(v) for v in dss[0].PixelSpacing)
    ipps = [np.array([float(v) for v in d.ImagePositionPatient]) for d in dss]
    if len(ipps) > 1:
        spacing = abs(np.dot(ipps[-1] - ipps[0], n)) / (len(ipps) - 1)
    else:
        spacing = float(dss[0].get("SliceThickness", 1) or 1)
    half = spacing / 2 + 1e-3
    sops = {d.SOPInstanceUID: k for k, d in enumerate(dss)}
    rt = pydicom.dcmread(rtfile, force=True)
    names = {int(i.ROINumber): str(i.ROIName) for i in rt.StructureSetROISequence}
    resolves = any(
        ci.ReferencedSOPInstanceUID in sops
        for rc in rt.ROIContourSequence for cs in rc.get("ContourSequence", [])
        for ci in cs.get("ContourImageSequence", [])
    )
    out = {}
    for rc in rt.ROIContourSequence:
        name = names.get(int(rc.ReferencedROINumber), f"ROI-{rc.ReferencedROINumber}")
        mask = np.zeros((len(dss), rows, cols), dtype=bool)
        for cs in rc.get("ContourSequence", []):
            if cs.ContourGeometricType not in ("CLOSED_PLANAR", "INTERPOLATED_PLANAR"):
                continue
            pts = np.array([float(v) for v in cs.ContourData]).reshape(-1, 3)
            if len(pts) < 3:
                continue
            s = None
            if resolves:
                for ci in cs.get("ContourImageSequence", []):
                    if ci.ReferencedSOPInstanceUID in sops:
                        s = sops[ci.ReferencedSOPInstanceUID]
            if s is None:
                dist = [np.abs((pts - p) @ n).max() for p in ipps]
                k = int(np.argmin(dist))
                if dist[k] <= half:
                    s = k
            if s is None:
                continue
            d = pts - ipps[s]
            poly = np.stack([(d @ r) / dcol, (d @ c) / drow], axis=1)
            mask[s] ^= polygon_mask(poly, rows, cols)
        z, y, x = np.nonzero(mask)
        out[name] = [[int(a), int(b), int(cc)] for a, b, cc in zip(x, y, z)]
    print(json.dumps(out))


def rtutils(folder, rtfile):
    from rt_utils import RTStructBuilder
    rt = RTStructBuilder.create_from(dicom_series_path=folder, rt_struct_path=rtfile)
    out = {}
    for name in rt.get_roi_names():
        try:
            mask = rt.get_roi_mask_by_name(name)  # [row, col, slice], slices ascending
        except Exception as e:  # rt-utils refuses contours on absent images
            out[name] = {"error": str(e)}
            continue
        y, x, z = np.nonzero(mask)
        out[name] = [[int(a), int(b), int(cc)] for a, b, cc in zip(x, y, z)]
    print(json.dumps(out))


def write_image(path, study, series, frame, sop, ipp, iop, spacing, rows, cols, pixels):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.FrameOfReferenceUID = frame
    ds.Modality = "CT"
    ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
    ds.PixelSpacing = [f"{v:.4f}" for v in spacing]
    ds.SliceThickness = "1"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_grid(rtfile, outdir):
    rt = pydicom.dcmread(rtfile, force=True)
    frame = rt.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID
    pts = np.concatenate([
        np.array([float(v) for v in cs.ContourData]).reshape(-1, 3)
        for rc in rt.ROIContourSequence for cs in rc.get("ContourSequence", [])
    ])
    zs = sorted({round(float(z), 3) for z in pts[:, 2]})
    lo = np.floor(pts[:, :2].min(axis=0)) - 3
    hi = np.ceil(pts[:, :2].max(axis=0)) + 3
    cols, rows = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1
    os.makedirs(outdir, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    for k, z in enumerate(zs):
        pixels = (np.arange(rows * cols) % 97).reshape(rows, cols) + 100 * k + 1
        write_image(os.path.join(outdir, f"{k:03d}.dcm"), study, series, frame, generate_uid(),
                    [lo[0], lo[1], z], [1, 0, 0, 0, 1, 0], [1.0, 1.0], rows, cols, pixels)
    print(json.dumps({"slices": len(zs), "rows": rows, "cols": cols, "frame": frame}))


def make_oblique_rt(folder, out):
    dss, r, c, n = sorted_series(folder)
    drow, dcol = (float(v) for v in dss[0].PixelSpacing)
    rows, cols = dss[0].Rows, dss[0].Columns
    ds = Dataset()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(out, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    frame = dss[0].get("FrameOfReferenceUID", "")
    rfor = Dataset()
    rfor.FrameOfReferenceUID = frame
    ds.ReferencedFrameOfReferenceSequence = Sequence([rfor])
    roi = Dataset()
    roi.ROINumber = 1
    roi.ROIName = "blob"
    roi.ReferencedFrameOfReferenceUID = frame
    ds.StructureSetROISequence = Sequence([roi])
    contours = []
    for k, d in enumerate(dss):
        ipp = np.array([float(v) for v in d.ImagePositionPatient])
        # A pentagon of non-integer vertices in pixel units, varying per slice.
        cx, cy = cols * 0.45 + k, rows * 0.5
        poly = [(cx + (12.3 + k) * np.cos(a), cy + 9.7 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 6)[:-1]]
        pts = [ipp + x * dcol * r + y * drow * c for x, y in poly]
        cs = Dataset()
        cs.ContourGeometricType = "CLOSED_PLANAR"
        cs.NumberOfContourPoints = len(pts)
        cs.ContourData = [f"{v:.6f}" for p in pts for v in p]
        contours.append(cs)
    rc = Dataset()
    rc.ReferencedROINumber = 1
    rc.ContourSequence = Sequence(contours)
    ds.ROIContourSequence = Sequence([rc])
    ds.save_as(out, enforce_file_format=True)
    print(json.dumps({"contours": len(contours)}))


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    {"adc": adc, "rule": rule, "rtutils": rtutils, "make-grid": make_grid,
     "make-oblique-rt": make_oblique_rt, "make-dwi": make_dwi}[mode](*args)
