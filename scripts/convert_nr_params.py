"""Convert the published NIQE and BRISQUE parameters into the files shipped in ``perceptiq/metrics/params``.

Reads ``../shared/data/params`` (beside the repository root, or ``--source``) and writes:

- ``niqe_pristine.npz``: ``mu`` (36,) and ``cov`` (36, 36), float64, from ``mu_pris_param`` and
  ``cov_pris_param`` of ``niqe/niqe_pristine_params.npz`` (values unchanged);
- ``brisque_live.npz``: the libsvm model ``brisque/brisque_live_allmodel`` (``support`` (774, 36),
  ``coef`` (774,), ``rho``, ``gamma``) and the ``svm-scale`` ranges of
  ``brisque/brisque_live_allrange.txt`` (``feature_min``, ``feature_max`` (36,), ``lower``,
  ``upper``), all float64 parsed from the decimal text without other change.

Usage: ``python scripts/convert_nr_params.py [--source DIR] [--dest DIR]``. The output is
deterministic (``numpy.savez_compressed`` of plain arrays); the script prints the SHA-256 of each
source and output file for PROVENANCE.md.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "params"
DEFAULT_DEST = ROOT / "src" / "perceptiq" / "metrics" / "params"
N_FEATURES = 36


def read_libsvm_model(path: Path) -> dict[str, np.ndarray]:
    """Parse a libsvm epsilon-SVR model with RBF kernel (text format of ``svm-train``)."""
    lines = path.read_text().splitlines()
    header: dict[str, str] = {}
    start = None
    for i, line in enumerate(lines):
        if line.strip() == "SV":
            start = i + 1
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    if start is None or header.get("svm_type") != "epsilon_svr" or header.get("kernel_type") != "rbf":
        raise ValueError(f"{path}: not a libsvm epsilon-SVR model with RBF kernel")
    coef, support = [], []
    for line in lines[start:]:
        if not line.strip():
            continue
        head, *pairs = line.split()
        row = np.zeros(N_FEATURES)
        for pair in pairs:
            index, value = pair.split(":")
            row[int(index) - 1] = float(value)
        coef.append(float(head))
        support.append(row)
    if len(support) != int(header["total_sv"]):
        raise ValueError(f"{path}: {len(support)} support vectors, header says {header['total_sv']}")
    return {
        "support": np.array(support),
        "coef": np.array(coef),
        "rho": np.array(float(header["rho"])),
        "gamma": np.array(float(header["gamma"])),
    }


def read_svm_scale_ranges(path: Path) -> dict[str, np.ndarray]:
    """Parse an ``svm-scale -s`` range file: ``x``, ``lower upper``, then ``index min max`` per feature."""
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if lines[0] != ["x"]:
        raise ValueError(f"{path}: expected an svm-scale range file starting with 'x'")
    lower, upper = map(float, lines[1])
    lo = np.full(N_FEATURES, np.nan)
    hi = np.full(N_FEATURES, np.nan)
    for index, fmin, fmax in lines[2:]:
        lo[int(index) - 1] = float(fmin)
        hi[int(index) - 1] = float(fmax)
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError(f"{path}: ranges missing for some of the {N_FEATURES} features")
    return {"feature_min": lo, "feature_max": hi, "lower": np.array(lower), "upper": np.array(upper)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args()
    src, dest = args.source, args.dest
    dest.mkdir(parents=True, exist_ok=True)

    niqe_src = src / "niqe" / "niqe_pristine_params.npz"
    with np.load(niqe_src) as data:
        mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(N_FEATURES)
        cov = np.asarray(data["cov_pris_param"], dtype=np.float64).reshape(N_FEATURES, N_FEATURES)
    np.savez_compressed(dest / "niqe_pristine.npz", mu=mu, cov=cov)

    model_src = src / "brisque" / "brisque_live_allmodel"
    range_src = src / "brisque" / "brisque_live_allrange.txt"
    np.savez_compressed(
        dest / "brisque_live.npz", **read_libsvm_model(model_src), **read_svm_scale_ranges(range_src)
    )

    for path in (niqe_src, model_src, range_src, dest / "niqe_pristine.npz", dest / "brisque_live.npz"):
        print(f"{sha256(path)}  {path}")


if __name__ == "__main__":
    main()
