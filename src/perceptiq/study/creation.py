"""Creating a 2AFC study: pair files (from ``perceptiq mad`` or any CSV of image pairs), the images'
displayed sizes, generated gold pairs and the study's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from perceptiq.errors import DataFileError, InputError
from perceptiq.study.db import Database
from perceptiq.study.models import Image, Pair, Study
from perceptiq.study.service import StudyExistsError, StudySettings, check_study_name

__all__ = ["GOLD_FOLDER", "PairSpec", "create_study", "make_gold_pairs", "read_pairs"]


@dataclass(frozen=True)
class PairSpec:
    """One row of a pairs file: image names relative to the image folder, their methods, the gold answer."""

    image_a: str
    image_b: str
    method_a: str
    method_b: str
    group: str = ""
    gold: str | None = None


_IMAGE_COLUMNS = (("path_a", "path_b"), ("image_a", "image_b"), ("name1_column", "name2_column"))
_IMAGE_COLUMNS += (("first", "second"), ("left", "right"))


def _relative_name(raw: str, image_dir: Path, where: str, path: Path) -> str:
    """The file's path relative to ``image_dir`` (posix), refusing any path that leaves it."""
    if not raw:
        raise DataFileError(path, f"{where}: empty image name")
    candidate = Path(raw)
    options = [candidate] if candidate.is_absolute() else [image_dir / candidate, Path.cwd() / candidate]
    root = image_dir.resolve()
    for option in options:
        resolved = option.resolve()
        if resolved.is_relative_to(root) and resolved.exists():
            return resolved.relative_to(root).as_posix()
    first = options[0].resolve()
    if not first.is_relative_to(root):
        raise DataFileError(path, f"{where}: {raw!r} is outside the image folder {image_dir}")
    raise DataFileError(path, f"{where}: image {raw!r} not found in {image_dir}")


def read_pairs(path: str | Path, image_dir: str | Path) -> list[PairSpec]:
    """Read a pairs file: the CSV of ``perceptiq mad`` (``path_a, path_b, method_a, method_b``) or any table
    with two image columns (``image_a/image_b``, ``name1_column/name2_column`` as in RealSR-1K's
    ``sr_subjective_results.csv``, ``first/second`` or ``left/right``), optional ``method_a/method_b``
    (default: the file-name suffix after the last ``_``), ``group`` and ``gold`` (``a`` or ``b``, or the
    method or image name of the obviously better image of a gold pair). Paths are relative to
    ``image_dir`` (or absolute inside it)."""
    from perceptiq.io.tables import read_table
    from perceptiq.io.votes import method_of_images

    path, image_dir = Path(path), Path(image_dir)
    if not image_dir.is_dir():
        raise DataFileError(image_dir, "image folder not found")
    frame = read_table(path, as_text=True)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    columns = next((pair for pair in _IMAGE_COLUMNS if set(pair) <= set(frame.columns)), None)
    if columns is None:
        expected = " or ".join("/".join(pair) for pair in _IMAGE_COLUMNS)
        raise DataFileError(path, f"no image columns: expected {expected}; columns are {list(frame.columns)}")
    if frame.empty:
        raise DataFileError(path, "no pairs")
    a_col, b_col = columns
    names = {c: frame[c].str.strip() for c in columns}
    resolved = [
        tuple(_relative_name(names[c].iloc[row], image_dir, f"line {row + 2}, {c}", path) for c in columns)
        for row in range(len(frame))
    ]  # every path is checked before anything else is read from the file
    methods = {}
    for col, m_col in ((a_col, "method_a"), (b_col, "method_b")):
        if m_col in frame.columns:
            methods[m_col] = frame[m_col].str.strip().to_numpy(dtype=str)
        else:
            methods[m_col] = method_of_images(names[col].map(lambda s: Path(s).name), col, path)
    groups = frame["group"].str.strip() if "group" in frame.columns else None
    golds = frame["gold"].str.strip() if "gold" in frame.columns else None
    specs = []
    seen: set[tuple[str, str]] = set()
    for row in range(len(frame)):
        line = f"line {row + 2}"
        a, b = resolved[row]
        if a == b:
            raise DataFileError(path, f"{line}: image {a!r} is compared with itself")
        key = (min(a, b), max(a, b))
        if key in seen:
            raise DataFileError(path, f"{line}: the pair {a!r}, {b!r} is listed twice")
        seen.add(key)
        ma, mb = str(methods["method_a"][row]), str(methods["method_b"][row])
        gold = None
        if golds is not None and golds.iloc[row]:
            raw = golds.iloc[row]
            lookup = {"a": "a", "b": "b", ma: "a", mb: "b", names[a_col].iloc[row]: "a"}
            lookup[names[b_col].iloc[row]] = "b"
            if raw.lower() in ("a", "b"):
                gold = raw.lower()
            elif raw in lookup and ma != mb:
                gold = lookup[raw]
            else:
                raise DataFileError(
                    path, f"{line}: gold {raw!r} is neither 'a', 'b' nor one of the two images"
                )
        elif ma == mb:
            raise DataFileError(path, f"{line}: both images are of method {ma!r} (only a gold pair may be)")
        group = groups.iloc[row] if groups is not None else ""
        specs.append(PairSpec(a, b, ma, mb, group, gold))
    return specs


def _image_sizes(image_dir: Path, names: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Displayed (width, height) of every image (EXIF orientation applied, as a browser shows it)."""
    from perceptiq.io.images import probe_image

    sizes, errors = {}, []
    for name in names:
        try:
            height, width = probe_image(image_dir / name).display_size
            sizes[name] = (width, height)
        except DataFileError as err:
            errors.append(err)
    if errors:
        more = f" (and {len(errors) - 1} more unreadable image(s))" if len(errors) > 1 else ""
        raise DataFileError(errors[0].path, errors[0].problem + more)
    return sizes


def create_study(
    db: Database,
    name: str,
    pairs: Sequence[PairSpec] | str | Path,
    image_dir: str | Path,
    settings: StudySettings | None = None,
    *,
    gold_pairs: int = 0,
) -> dict[str, object]:
    """Create study ``name`` from pairs (a pairs file or :class:`PairSpec` rows) of images in ``image_dir``.

    Every image is opened (header only) and its displayed size recorded; an unreadable one stops the
    creation with an error naming it. ``gold_pairs`` adds that many gold pairs made by
    :func:`make_gold_pairs`. Returns a summary (counts of pairs, gold pairs, images, methods)."""
    settings = settings or StudySettings()
    check_study_name(name)
    image_dir = Path(image_dir)
    specs = read_pairs(pairs, image_dir) if isinstance(pairs, (str, Path)) else list(pairs)
    if not specs:
        raise InputError("a study needs at least one pair")
    regular = [p for p in specs if p.gold is None]
    if gold_pairs:
        sources = sorted({n for p in regular for n in (p.image_a, p.image_b)})
        specs += make_gold_pairs(image_dir, sources, gold_pairs)
    if settings.repeats > (settings.pairs_per_session or len(regular)):
        raise InputError(f"repeats={settings.repeats} exceeds the regular pairs shown to a participant")
    names = sorted({n for p in specs for n in (p.image_a, p.image_b)})
    sizes = _image_sizes(image_dir, names)
    with db.write_lock(), db.sessionmaker() as session, session.begin():
        if session.scalar(select(Study.id).where(Study.name == name)) is not None:
            raise StudyExistsError(f"a study named {name!r} already exists in this database")
        study = Study(
            name=name,
            image_dir=str(image_dir.resolve()),
            pairs_per_session=settings.pairs_per_session,
            repeats=settings.repeats,
            active=settings.active,
            max_gold_failure_rate=settings.max_gold_failure_rate,
            min_repeat_agreement=settings.min_repeat_agreement,
            instructions=settings.instructions,
        )
        images = {n: Image(name=n, width=sizes[n][0], height=sizes[n][1]) for n in names}
        study.images = list(images.values())
        study.pairs = [
            Pair(
                position=k,
                image_a=images[p.image_a],
                image_b=images[p.image_b],
                method_a=p.method_a,
                method_b=p.method_b,
                group=p.group,
                gold=p.gold,
            )
            for k, p in enumerate(specs)
        ]
        session.add(study)
    methods = sorted({m for p in regular for m in (p.method_a, p.method_b)})
    return {
        "study": name,
        "pairs": len(regular),
        "gold_pairs": len(specs) - len(regular),
        "images": len(names),
        "methods": methods,
        "image_dir": str(image_dir.resolve()),
    }


GOLD_FOLDER = "perceptiq_gold"
GOLD_BLUR_FRACTION = 0.02


def make_gold_pairs(image_dir: str | Path, names: Sequence[str], n: int, *, seed: int = 0) -> list[PairSpec]:
    """``n`` gold pairs: an image of the study beside a copy blurred with a Gaussian of radius 2% of its
    larger side (at least 3 pixels), an obvious defect (P.910's trapping questions; ITU-T P.910, 2022).

    The copies are written to ``image_dir/perceptiq_gold/`` (PNG); the original is the right answer."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    image_dir = Path(image_dir)
    if n < 0 or n > len(names):
        raise InputError(
            f"gold pairs: {n} requested, but the study has {len(names)} images to make them from"
        )
    rng = np.random.default_rng(seed)
    out = image_dir / GOLD_FOLDER
    specs = []
    for name in sorted(rng.choice(np.asarray(sorted(names)), size=n, replace=False).tolist()):
        target = f"{GOLD_FOLDER}/{Path(name).with_suffix('').as_posix().replace('/', '__')}_blurred.png"
        try:
            out.mkdir(exist_ok=True)
            with PILImage.open(image_dir / name) as img:
                radius = max(3.0, GOLD_BLUR_FRACTION * max(img.size))
                img.convert("RGB").filter(ImageFilter.GaussianBlur(radius)).save(image_dir / target)
        except OSError as err:
            raise DataFileError(image_dir / name, f"cannot make its gold copy ({err})") from None
        specs.append(PairSpec(name, target, "original", "blurred", "gold", "a"))
    return specs
