"""The learned-model API: registry, config round trip, safetensors save/load, hub errors, scoring policy."""

from __future__ import annotations

import json

import pytest
import torch

from perceptiq.errors import RegistryError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models import WeightsError, create_model, list_models, load_model, save_model
from perceptiq.models.face_lite import FaceLiteConfig

TINY = {"backbone": "mobilenetv3_small_050", "head_hidden": 16, "input_policy": InputPolicy(mode="full")}


def test_registry_lists_and_suggests():
    assert {"face_lite_mobilenetv3", "face_lite_edgenext", "face_lite_regnety"} <= set(list_models())
    with pytest.raises(RegistryError, match="did you mean face_lite_regnety"):
        create_model("face_lite_regnet")
    with pytest.raises(Exception, match="has no option"):
        create_model("face_lite_mobilenetv3", nonsense=1)


def test_config_json_round_trip():
    cfg = FaceLiteConfig(backbone="regnety_004", input_policy=InputPolicy(mode="tiles", tile_size=(224, 160)))
    again = FaceLiteConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_save_load_is_bit_exact_and_deterministic(tmp_path):
    torch.manual_seed(0)
    model = create_model("face_lite_mobilenetv3", **TINY)
    x = torch.rand(3, 3, 96, 128)
    first = model.score(x)
    assert torch.equal(first, model.score(x))
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert torch.equal(loaded.score(x), first)
    via_create = create_model("face_lite_mobilenetv3", weights=tmp_path / "m")
    assert torch.equal(via_create.score(x), first)


def test_weight_errors_are_clear(tmp_path):
    model = create_model("face_lite_mobilenetv3", **TINY)
    save_model(model, tmp_path / "m")
    with pytest.raises(WeightsError, match="shape mismatch|missing key"):
        create_model(
            "face_lite_mobilenetv3",
            weights=tmp_path / "m" / "model.safetensors",
            **{**TINY, "head_hidden": 8},
        )
    with pytest.raises(WeightsError, match="not in the local cache and cannot be downloaded"):
        create_model("face_lite_mobilenetv3", weights="perceptiq-test/no-such-repo")
    with pytest.raises(WeightsError, match="no such file"):
        create_model("face_lite_mobilenetv3", weights=str(tmp_path / "nowhere" / "x"))


def test_loads_a_backbone_saved_by_timm_itself(tmp_path):
    import timm

    reference = timm.create_model("mobilenetv3_small_050", pretrained=False, num_classes=0)
    torch.save(reference.state_dict(), tmp_path / "backbone.pth")
    model = create_model("face_lite_mobilenetv3", **TINY, backbone_weights=str(tmp_path / "backbone.pth"))
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor)


def test_one_training_step_lowers_the_loss_on_a_repeated_batch():
    torch.manual_seed(0)
    model = create_model("face_lite_mobilenetv3", **TINY, dropout=0.0)
    x, y = torch.rand(4, 3, 64, 64), torch.tensor([1.0, 2.0, 3.0, 4.0])
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_random_patch_policy_averages_patch_scores():
    torch.manual_seed(0)
    policy = InputPolicy(mode="random_patches", tile_size=64, num_patches=5, seed=3)
    model = create_model("face_lite_mobilenetv3", **{**TINY, "input_policy": policy}).eval()
    x = torch.rand(1, 3, 100, 120)
    from perceptiq.functional.patches import crop_boxes, policy_boxes

    boxes = policy_boxes(100, 120, policy)
    with torch.no_grad():
        expected = model(crop_boxes(x, boxes)).mean()
    assert model.score(x).item() == pytest.approx(expected.item(), abs=1e-6)


def test_a_model_is_usable_as_a_metric(tmp_path):
    from perceptiq.metrics import create_metric

    torch.manual_seed(0)
    model = create_model("face_lite_mobilenetv3", **TINY)
    save_model(model, tmp_path / "m")
    metric = create_metric("model", weights=str(tmp_path / "m"))
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(metric(x), model.score(x))
    assert not metric.needs_reference
    assert metric.lower_is_better is False


def test_read_state_dict_formats_wrappers_and_errors(tmp_path):
    from safetensors.torch import save_file

    from perceptiq.errors import DataFileError
    from perceptiq.models._weights_file import read_state_dict

    state = {"a.weight": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2, dtype=torch.float64)}
    save_file(state, str(tmp_path / "w.safetensors"))
    torch.save(state, tmp_path / "flat.pt")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "wrapped.pth")
    torch.save({"model": state, "model_ema": {"a.weight": torch.zeros(2, 3)}}, tmp_path / "ema.pt")
    torch.save({"module." + k: v for k, v in state.items()}, tmp_path / "parallel.pt")
    for name in ("w.safetensors", "flat.pt", "wrapped.pth", "parallel.pt"):
        got = read_state_dict(tmp_path / name)
        assert sorted(got) == sorted(state), name
        assert all(torch.equal(got[k], state[k]) for k in state), name
    assert torch.equal(read_state_dict(tmp_path / "ema.pt")["a.weight"], torch.zeros(2, 3))  # EMA first

    with pytest.raises(DataFileError, match=r"none\.pt: weights file not found"):
        read_state_dict(tmp_path / "none.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(DataFileError, match=r"junk\.safetensors: cannot read weights \("):
        read_state_dict(tmp_path / "junk.safetensors")
    torch.save({"a": [1, 2]}, tmp_path / "lists.pt")
    with pytest.raises(DataFileError, match=r"lists\.pt: does not hold a state dict"):
        read_state_dict(tmp_path / "lists.pt")
    torch.save({"a": torch.nn.Linear(1, 1)}, tmp_path / "pickled_module.pt")  # needs full unpickling
    with pytest.raises(DataFileError, match=r"pickled_module\.pt: cannot read weights \(UnpicklingError"):
        read_state_dict(tmp_path / "pickled_module.pt")
    with pytest.raises(WeightsError, match=r"none\.pt: weights file not found"):
        read_state_dict(tmp_path / "none.pt", error=WeightsError)


def test_model_and_backbone_weight_files_share_one_reader(tmp_path):
    """A torch.save state dict loads as model weights; a broken backbone file is one clear error."""
    torch.manual_seed(0)
    model = create_model("face_lite_mobilenetv3", **TINY)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "m.pt")
    again = create_model("face_lite_mobilenetv3", weights=tmp_path / "m.pt", **TINY)
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(again.score(x), model.score(x))
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"broken\.pth: cannot read weights"):
        create_model("face_lite_mobilenetv3", **TINY, backbone_weights=str(tmp_path / "broken.pth"))
