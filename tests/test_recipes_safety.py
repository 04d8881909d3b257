"""A training recipe is data, not code: ``model.imports`` needs the caller's consent and never reaches the
working directory; ``python -m perceptiq`` does not run files of the working directory.

Each test plants a module that, when imported, writes a marker file; the marker is the independent witness
of whether the module's code ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from perceptiq.training.config import ConfigError, config_from_dict, import_model_modules
from perceptiq.training.loop import train

SRC = str(Path(__file__).resolve().parents[1] / "src")


def plant_module(folder: Path, name: str) -> Path:
    """Write ``folder/name.py`` that creates ``folder/name.ran`` when imported; returns the marker path."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"{name}.ran"
    (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    return marker


def recipe(tmp_path: Path, imports: list[str]) -> dict:
    return {
        "model": {"name": "face_lite_mobilenetv3", "imports": imports},
        "data": {"train": str(tmp_path / "manifest.csv")},
        "loss": [{"name": "mse"}],
        "output_dir": str(tmp_path / "run"),
        "log": {"progress": False, "tensorboard": False},
    }


def run_module_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONSAFEPATH", None)
    return subprocess.run(
        [sys.executable, "-m", "perceptiq", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_a_recipe_with_imports_is_refused_without_consent(tmp_path, monkeypatch):
    marker = plant_module(tmp_path / "modules", "pq_custom_family_a")
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    cfg = config_from_dict(recipe(tmp_path, ["pq_custom_family_a"]))
    with pytest.raises(ConfigError, match="allow-imports") as err:
        train(cfg)
    assert "\n" not in str(err.value)
    assert not marker.exists()
    assert not (tmp_path / "run").exists()  # refused before anything is written
    import_model_modules(["perceptiq.models.rank_rectifier"], allowed=False)  # perceptiq's own: always
    assert "perceptiq.models.rank_rectifier" in sys.modules

    from typer.testing import CliRunner

    import perceptiq.cli.train  # noqa: F401  (registers the command)
    from perceptiq.cli._app import app

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, ["pq_custom_family_a"])))
    result = CliRunner().invoke(app, ["train", str(path)])
    assert result.exit_code == 1
    assert "--allow-imports" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_allowed_imports_come_from_sys_path_but_never_from_the_working_directory(tmp_path, monkeypatch):
    on_path = plant_module(tmp_path / "modules", "pq_custom_family_b")
    in_cwd = plant_module(tmp_path / "cwd", "pq_custom_family_c")
    monkeypatch.syspath_prepend(str(tmp_path / "modules"))
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(sys, "path", ["", str(tmp_path / "cwd"), *sys.path])
    import_model_modules(["pq_custom_family_b"], allowed=True)
    assert on_path.exists()
    with pytest.raises(ConfigError, match="cannot import 'pq_custom_family_c'"):
        import_model_modules(["pq_custom_family_c"], allowed=True)
    assert not in_cwd.exists()
    assert sys.path[:2] == ["", str(tmp_path / "cwd")]  # restored afterwards
    sys.modules.pop("pq_custom_family_b", None)


@pytest.mark.slow
def test_python_m_perceptiq_never_imports_a_file_of_the_working_directory(tmp_path):
    cwd = tmp_path / "cwd"
    planted = plant_module(cwd, "pq_custom_family_d")
    shadow = plant_module(cwd, "typer")  # the CLI imports typer: a file of that name must not be run
    path = cwd / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, ["pq_custom_family_d"])))
    result = run_module_cli(["train", str(path), "--allow-imports"], cwd)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot import 'pq_custom_family_d'" in lines[0]
    assert "Traceback" not in result.stderr
    assert not planted.exists()
    assert not shadow.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_missing_module_is_a_one_line_error_and_exit_1(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe(tmp_path, ["pq_no_such_module_xyz"])))
    result = run_module_cli(["train", str(path), "--allow-imports"], tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: model.imports: cannot import 'pq_no_such_module_xyz'")
