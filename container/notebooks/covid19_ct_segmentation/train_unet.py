#!/usr/bin/env python3
"""Train the small U-Net of the COVID-19 CT segmentation notebook, as a plain script.

The same code as the notebook, without the plots: it is what a remote (batch)
training job runs. Settings are the variables below; an H5 path given as the
first command-line argument replaces H5_PATH.

    python train_unet.py [H5_PATH]

The H5 file holds `images` (N, H, W, 1) and `masks` (N, H, W, 1). Writes
unet.keras (and unet.onnx where the ONNX export works) into the current folder
and prints the validation Dice score.
"""

import os
import sys
from pathlib import Path

H5_PATH = "data/synthetic_ct.h5"
IMG_SIZE = 64  # slices are resized to IMG_SIZE x IMG_SIZE (a multiple of 4)
MAX_SLICES = 400  # at most this many slices are read
EPOCHS = 25
BATCH_SIZE = 8
SEED = 42
MODEL_PATH = "unet.keras"
ONNX_PATH = "unet.onnx"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

IMAGE_KEYS = ("images", "image", "x", "X", "ct", "inputs")
MASK_KEYS = ("masks", "mask", "y", "Y", "labels", "infection")


def _pick(h5, names):
    for name in names:
        if name in h5:
            return h5[name]
    raise KeyError(f"none of {names} in {h5.filename} (it has {list(h5.keys())})")


def load_data(path, img_size=IMG_SIZE, max_slices=MAX_SLICES):
    """Images scaled to [0, 1] and binary masks (any label > 0), both (N, S, S, 1) float32."""
    with h5py.File(path, "r") as h5:
        images = np.asarray(_pick(h5, IMAGE_KEYS)[:max_slices], dtype=np.float32)
        masks = np.asarray(_pick(h5, MASK_KEYS)[:max_slices], dtype=np.float32)
    if images.ndim == 3:
        images, masks = images[..., None], masks[..., None]
    if images.shape[1:3] != (img_size, img_size):
        from skimage.transform import resize

        images = np.stack([resize(im, (img_size, img_size, 1), anti_aliasing=True) for im in images])
        masks = np.stack([resize(m, (img_size, img_size, 1), order=0, anti_aliasing=False) for m in masks])
    lo, hi = images.min(), images.max()
    images = ((images - lo) / (hi - lo + 1e-8)).astype(np.float32)
    masks = (masks > 0).astype(np.float32)
    return images, masks


def split(images, masks, val_fraction=0.25, seed=SEED):
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, int(round(len(images) * val_fraction)))
    val, train = order[:n_val], order[n_val:]
    return (images[train], masks[train]), (images[val], masks[val])


def build_unet(img_size=IMG_SIZE, base=8):
    """A two-level U-Net: 8-16-32 filters, about 30k parameters."""

    def block(x, filters):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return layers.Conv2D(filters, 3, padding="same", activation="relu")(x)

    inputs = keras.Input((img_size, img_size, 1), name="image")
    c1 = block(inputs, base)
    c2 = block(layers.MaxPooling2D()(c1), base * 2)
    bottom = block(layers.MaxPooling2D()(c2), base * 4)
    u2 = layers.Concatenate()([layers.UpSampling2D()(bottom), c2])
    u1 = layers.Concatenate()([layers.UpSampling2D()(block(u2, base * 2)), c1])
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(block(u1, base))
    return keras.Model(inputs, outputs, name="unet")


def dice_loss(y_true, y_pred, smooth=1.0):
    inter = keras.ops.sum(y_true * y_pred, axis=(1, 2, 3))
    total = keras.ops.sum(y_true, axis=(1, 2, 3)) + keras.ops.sum(y_pred, axis=(1, 2, 3))
    return 1.0 - (2.0 * inter + smooth) / (total + smooth)


def bce_dice_loss(y_true, y_pred):
    return keras.losses.binary_crossentropy(y_true, y_pred, axis=(1, 2, 3)) + dice_loss(y_true, y_pred)


def dice_score(y_true, y_pred, threshold=0.5):
    """Dice over the whole set, on thresholded predictions (numpy)."""
    pred = y_pred > threshold
    true = y_true > 0.5
    return float(2.0 * np.logical_and(pred, true).sum() / (pred.sum() + true.sum() + 1e-8))


def train(h5_path=H5_PATH, epochs=EPOCHS, verbose=2):
    keras.utils.set_random_seed(SEED)
    images, masks = load_data(h5_path)
    (x_train, y_train), (x_val, y_val) = split(images, masks)
    model = build_unet(images.shape[1])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=bce_dice_loss)
    history = model.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=BATCH_SIZE, verbose=verbose
    )
    dice = dice_score(y_val, model.predict(x_val, verbose=0))
    return model, history, dice


def main(argv):
    h5_path = Path(argv[1] if len(argv) > 1 else H5_PATH)
    if not h5_path.is_absolute() and not h5_path.exists():
        h5_path = Path(__file__).resolve().parent / h5_path  # relative to this script
    model, _, dice = train(h5_path)
    print(f"validation Dice: {dice:.3f}")
    model.save(MODEL_PATH)
    print(f"saved {MODEL_PATH}")
    try:
        model.export(ONNX_PATH, format="onnx")
        print(f"saved {ONNX_PATH}")
    except Exception as error:  # the Keras model is the result; ONNX is a bonus
        print(f"ONNX export failed ({error}); {MODEL_PATH} is still usable")


if __name__ == "__main__":
    main(sys.argv)
