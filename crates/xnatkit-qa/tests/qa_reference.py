"""Independent reference for xnatkit-qa's metrics: numpy + scipy.ndimage on
the image as nibabel reads it. Prints one JSON object.

    python qa_reference.py IMAGE.nii.gz

Written from the formulas in docs/pipelines.md, not from the Rust code:
Otsu's threshold over 256 bins (skimage's formulation), the largest
6-connected component (scipy.ndimage.label), holes filled with
scipy.ndimage.binary_fill_holes over the axes longer than 1.
"""
import json
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi


def otsu(values, nbins=256):
    hist, edges = np.histogram(values, bins=nbins, range=(values.min(), values.max()))
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w1 = np.cumsum(hist)
    w2 = np.cumsum(hist[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = np.cumsum(hist * centres) / w1
        m2 = (np.cumsum((hist * centres)[::-1]) / w2[::-1])[::-1]
        between = w1[:-1] * w2[1:] * (m1[:-1] - m2[1:]) ** 2
    return float(centres[np.nanargmax(between)])


def main(path):
    data = nib.load(path).get_fdata()
    while data.ndim < 3:
        data = data[..., np.newaxis]
    frames = data.shape[3] if data.ndim == 4 else 1
    mean = data.mean(axis=3) if data.ndim == 4 else data

    threshold = otsu(mean.ravel())
    labels, count = ndi.label(mean > threshold)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    head = labels == np.argmax(sizes)
    squeezed = np.squeeze(head)
    head = ndi.binary_fill_holes(squeezed).reshape(head.shape)

    f = mean[head]
    n = f.size
    mu, sd = f.mean(), f.std()
    out = {
        "otsu_threshold": threshold,
        "mask_voxels": int(n),
        "mean": float(mu),
        "stddev": float(sd),
        "min": float(f.min()),
        "max": float(f.max()),
        "snr": float(mu / (sd * np.sqrt(n / (n - 1)))),
    }

    x = np.clip(mean, 0, None).ravel()
    big_n = x.size
    b_max = np.sqrt((x**2).sum())
    efc_max = big_n * (1 / np.sqrt(big_n)) * np.log(1 / np.sqrt(big_n))
    out["efc"] = float(np.sum((x / b_max) * np.log((x + 1e-16) / b_max)) / efc_max)

    bg = (mean[~head] ** 2).mean() if (~head).any() else 0.0
    out["fber"] = float((mean[head] ** 2).mean() / bg) if bg >= 1e-3 else None

    if frames > 1:
        sd_t = data.std(axis=3)
        with np.errstate(divide="ignore", invalid="ignore"):
            tsnr = np.where(sd_t > 0, data.mean(axis=3) / sd_t, 0.0)
        out["tsnr_mean"] = float(tsnr[head].mean())
        out["tsnr_median"] = float(np.median(tsnr[head]))
        g = np.array([data[..., t][head].mean() for t in range(frames)])
        if frames >= 3:
            t = np.arange(frames, dtype=np.float64)
            slope = np.polyfit(t, g, 1)[0]
            out["drift_percent"] = float(100 * slope * (frames - 1) / g.mean())
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
