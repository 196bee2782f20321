"""Convert the authors' published Simple Shapes layout (docs/design.md §10) into our format.

Their layout, per split (train, val, test):
    {split}/{k}.png           32×32 RGBA images (alpha 255), k = 0 .. N−1
    {split}_labels.npy        float32 (N, 12): class, x, y, size, θ, R, G, B, H, L, S, u
    {split}_captions.npy      N strings (their grammar)
Our labels keep the first eight columns, with θ brought into [0, 2π). Captions are kept as
they are (their grammar, which `parse_caption` does not read) unless `our_captions` asks for
captions of our grammar, generated from the labels with `seed`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from ..fileio import allocated_memmap, atomic_directory, atomic_write_text, refuse_overlap
from ..locking import exclusive_output
from ..seeding import numpy_generator
from .captions import make_captions
from .format import SPLITS, Dataset, DatasetInfo, load_dataset, write_info
from .simple_shapes import LABEL_COLUMNS, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, NAME, wrap_rotation

REFERENCE_COLUMNS = 12


def _load_array(file: Path, allow_pickle: bool) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=allow_pickle)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UserError(
                f"{file} holds pickled Python objects; pass --allow-pickle if you trust its source"
            ) from exc
        raise UserError(f"{file} is not a readable .npy file ({exc})") from exc
    except (OSError, EOFError) as exc:
        raise UserError(f"{file} is corrupted or truncated ({exc})") from exc


def _check_labels(file: Path, labels: np.ndarray) -> np.ndarray:
    numeric = np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)
    if labels.ndim != 2 or labels.shape[1] != REFERENCE_COLUMNS or not numeric:
        raise UserError(
            f"{file} holds {labels.dtype} {labels.shape}, expected real numbers (N, {REFERENCE_COLUMNS})"
        )
    if len(labels) == 0:
        raise UserError(f"{file} holds no examples; every split of the reference dataset holds some")
    ours = labels[:, :8].astype(np.float32)
    if not np.all(np.isfinite(ours)):
        raise UserError(f"{file} holds non-finite values")
    if not np.all(np.isin(ours[:, 0], (0, 1, 2))):
        raise UserError(f"{file}: column 0 (class) must be 0, 1 or 2")
    if np.any(ours[:, 3] <= 0) or np.any(ours[:, 5:8] < 0) or np.any(ours[:, 5:8] > 255):
        raise UserError(f"{file}: sizes must be positive and colours within 0–255")
    ours[:, 4] = wrap_rotation(labels[:, 4])
    return ours


def _check_geometry(file: Path, labels: np.ndarray, image_size: int) -> None:
    """Positions and sizes are pixels of the images beside them; outside the image they mean nothing."""
    if np.any(labels[:, 1:3] < 0) or np.any(labels[:, 1:3] > image_size):
        raise UserError(
            f"{file}: positions (columns 1, 2) must lie within the {image_size}×{image_size} images"
        )
    if np.any(labels[:, 3] > image_size):
        raise UserError(f"{file}: sizes (column 3) must not exceed the images' {image_size} pixels")


def _check_image_size(file: Path, image_size: int) -> None:
    if not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise UserError(
            f"{file} is {image_size}×{image_size}; Simple Shapes images are {MIN_IMAGE_SIZE} to "
            f"{MAX_IMAGE_SIZE} pixels wide (the reference's are 32)"
        )


def _read_png(file: Path, image_size: int | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            img.load()
            if img.mode not in ("RGBA", "RGB"):
                raise UserError(f"{file} is a {img.mode} image, expected RGBA or RGB")
            pixels = np.asarray(img)
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"{file} is missing or not a readable PNG ({exc})") from exc
    height, width = pixels.shape[:2]
    if height != width or (image_size is not None and height != image_size):
        raise UserError(f"{file} is {width}×{height}, expected {image_size or height}×{image_size or height}")
    if pixels.shape[2] == 4 and np.any(pixels[:, :, 3] != 255):
        raise UserError(f"{file} is not opaque (alpha below 255); the reference images are")
    return pixels[:, :, :3]


def import_reference(
    path: Path,
    out: Path,
    force: bool = False,
    our_captions: bool = False,
    seed: int = 0,
    allow_pickle: bool = False,
) -> Dataset:
    """Write the reference dataset at `path` to `out` in our format; refuse anything inconsistent."""
    path = Path(path)
    refuse_overlap(Path(out), {"reference dataset": path}, "dataset")
    if not path.is_dir():
        raise UserError(f"{path} is not a folder holding the reference dataset")
    present = [s for s in SPLITS if (path / f"{s}_labels.npy").exists()]
    if not present:
        raise UserError(f"{path} holds none of {', '.join(f'{s}_labels.npy' for s in SPLITS)}")
    missing = [f"{s}_labels.npy" for s in SPLITS if s not in present]
    if missing:
        raise UserError(
            f"{path} lacks {', '.join(missing)}; the reference dataset has train, val and test splits, "
            "and every command after the import needs all three"
        )
    splits = list(SPLITS)
    labels, captions = {}, {}
    for split in splits:
        labels[split] = _check_labels(
            path / f"{split}_labels.npy", _load_array(path / f"{split}_labels.npy", allow_pickle)
        )
        if not our_captions:  # theirs are replaced by ours: never read them
            captions_file = path / f"{split}_captions.npy"
            text = _load_array(captions_file, allow_pickle).reshape(-1)
            if len(text) != len(labels[split]):
                raise UserError(f"{captions_file} has {len(text)} captions for {len(labels[split])} labels")
            captions[split] = _decode_captions(text, captions_file)
    image_size = _read_png(path / splits[0] / "0.png", None).shape[0]
    _check_image_size(path / splits[0] / "0.png", image_size)
    for split in splits:
        _check_geometry(path / f"{split}_labels.npy", labels[split], image_size)
    with (
        exclusive_output(Path(out), "choose another OUT"),
        atomic_directory(Path(out), force, what="dataset", marker="dataset.json") as tmp,
    ):
        for split in splits:
            n = len(labels[split])
            (tmp / split).mkdir()
            images = allocated_memmap(tmp / split / "images.npy", np.uint8, (n, image_size, image_size, 3))
            for k in tqdm(range(n), desc=f"import {split}", unit="img", leave=False):
                images[k] = _read_png(path / split / f"{k}.png", image_size)
            images.flush()
            del images
            np.save(tmp / split / "labels.npy", labels[split])
            if our_captions:
                rng = numpy_generator(seed, split, "import-captions")
                captions[split] = make_captions(labels[split], rng)
            atomic_write_text(tmp / split / "captions.txt", "\n".join(captions[split]) + "\n")
        info = DatasetInfo(
            name=NAME,
            seed=int(seed),
            image_size=image_size,
            splits={s: len(labels[s]) for s in splits},
            label_columns=list(LABEL_COLUMNS),
            generator={
                "generator": "global_workspace.data.import_reference",
                "source": str(path.resolve()),
                "captions": "ours" if our_captions else "reference",
            },
        )
        write_info(tmp, info)
        load_dataset(tmp, expect_name=NAME)  # validated before it replaces anything
    return Dataset(out, info)


def _decode_captions(text: np.ndarray, file: Path) -> list[str]:
    """Their captions as one-line strings; bytes must be UTF-8 and no caption may be empty."""
    if text.dtype.kind not in "USO" or not all(isinstance(c, (str, bytes)) for c in text):
        raise UserError(
            f"{file} holds {text.dtype} values, not captions; give it text, or pass --our-captions to "
            "make ours from the labels"
        )
    try:
        captions = [" ".join((c.decode() if isinstance(c, bytes) else c).split()) for c in text]
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{file} holds a caption that is not UTF-8 text ({exc}); re-export the captions as UTF-8, "
            "or pass --our-captions to make ours from the labels"
        ) from exc
    if any(not c for c in captions):
        raise UserError(f"{file} holds an empty caption")
    return captions
