#!/usr/bin/env python3
"""Make the small synthetic CT data set used by the COVID-19 segmentation notebook.

Each sample is one 64x64 "CT slice": a bright elliptical body, two dark
elliptical lungs and, inside the lungs, a few smooth blob-shaped "lesions"
(ground-glass opacities: brighter than the lung, darker than soft tissue).
The mask marks the lesion pixels. Everything comes from a fixed seed, so the
file is reproducible.

    python make_synthetic_ct.py [OUTPUT] [--n N] [--size S] [--seed SEED]

Default output: synthetic_ct.h5 beside this script. Data sets in the file:
  images  float32 (N, S, S, 1), intensities in [0, 1]
  masks   uint8   (N, S, S, 1), 1 = lesion
"""

import argparse
from pathlib import Path

import h5py
import numpy as np


def _ellipse(yy, xx, cy, cx, ry, rx):
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _smooth(field, passes=3):
    """Cheap separable box blur (numpy only), applied a few times ~ Gaussian."""
    out = field
    for _ in range(passes):
        out = (np.roll(out, 1, 0) + out + np.roll(out, -1, 0)) / 3.0
        out = (np.roll(out, 1, 1) + out + np.roll(out, -1, 1)) / 3.0
    return out


def make_slice(rng, size):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = size / 2.0
    body = _ellipse(yy, xx, c, c, size * rng.uniform(0.36, 0.42), size * rng.uniform(0.44, 0.48))
    lung_ry = size * rng.uniform(0.22, 0.28)
    lung_rx = size * rng.uniform(0.13, 0.17)
    dx = size * rng.uniform(0.18, 0.22)
    lungs = _ellipse(yy, xx, c, c - dx, lung_ry, lung_rx) | _ellipse(yy, xx, c, c + dx, lung_ry, lung_rx)

    # Lesions: 1-3 blobs, each a thresholded smooth bump centred in a lung.
    lesion = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
        ys, xs = np.nonzero(lungs)
        k = rng.integers(len(ys))
        cy, cx = ys[k], xs[k]
        ry, rx = size * rng.uniform(0.06, 0.12), size * rng.uniform(0.06, 0.12)
        bump = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        bump *= 1.0 + 0.5 * _smooth(rng.standard_normal((size, size)), 2)
        lesion |= bump > 0.5
    lesion &= lungs

    image = np.zeros((size, size), np.float32)
    image[body] = 0.70
    image[lungs] = 0.12
    image[lesion] = rng.uniform(0.40, 0.55)
    image = _smooth(image, 1)
    image += 0.04 * rng.standard_normal((size, size)).astype(np.float32)
    return np.clip(image, 0.0, 1.0).astype(np.float32), lesion.astype(np.uint8)


def make_dataset(n=48, size=64, seed=2020):
    rng = np.random.default_rng(seed)
    pairs = [make_slice(rng, size) for _ in range(n)]
    images = np.stack([p[0] for p in pairs])[..., None]
    masks = np.stack([p[1] for p in pairs])[..., None]
    return images, masks


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default=str(Path(__file__).with_name("synthetic_ct.h5")))
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args()

    images, masks = make_dataset(args.n, args.size, args.seed)
    with h5py.File(args.output, "w") as h5:
        h5.create_dataset("images", data=images, compression="gzip", compression_opts=9, shuffle=True)
        h5.create_dataset("masks", data=masks, compression="gzip", compression_opts=9, shuffle=True)
        h5.attrs["description"] = "Synthetic CT slices with lesion masks (gxnb example, not real data)"
        h5.attrs["seed"] = args.seed
    print(
        f"{args.output}: images {images.shape} {images.dtype}, masks {masks.shape} {masks.dtype}, "
        f"lesion fraction {masks.mean():.3f}"
    )


if __name__ == "__main__":
    main()
