"""Learned quality models, one file per family, created by name with :func:`create_model`.

Families (each registers its variants on import; backbones from timm, transformers and open_clip
are imported only when a model needs them):

* ``backbone_stats_mlp``: pooled statistics of a frozen ImageNet network + MLP ensemble; ``perceptiq_nr_v2``
  is the default NR model.
* ``nss_mlp``: natural-scene statistics + MLP ensemble; ``perceptiq_nr`` is the first default NR model (v1).
* ``face_lite``: timm backbones + regression head under the face challenge budget (Ma et al., VQualA 2025
  FIQA report).
* ``clip_prompt``: CLIP/SigLIP/SigLIP2 five-level prompt models, LIQE/QA-Veteran (Li et al., ISRG-Q report,
  2025, Chen et al., Learning from Model Rankings, 2025).
* ``rank_rectifier``: a frozen base model + MLP rectifier (|a| + 1) q + b (Chen et al., Learning from Model
  Rankings, 2025).
* ``t2i_alignment``: overall alignment + element presence (Han et al., NTIRE 2025 T2I QA report, 5.1).
* ``t2i_structure``: score + distortion heatmap heads (Han et al., NTIRE 2025 T2I QA report, 5.2).
* ``hybrid_vit_cnn``: the MICV super-resolution model (Li et al., ISRG-Q report, 2025, 4.1).
* ``ultra_fr``: UltraR-IQA full-reference region model (Li et al., ISRG-Q report, 2025, 4.4).
* ``vlm_levels``: level-token scores of a transformers chat VLM (Q-Align, DeQA-Score), alignment and
  yes/no element presence; needs a checkpoint.
* ``vlm_reasoning``: K sampled reason-then-score answers of a transformers chat VLM (VisualQuality-R1), their
  mean, spread and rationales; needs a checkpoint.
* ``ensemble``: weighted combination of registered models.

Also here, not registered as models: :mod:`perceptiq.models.mad_features`, the ``D2`` feature extractors
of the MAD competition (:func:`perceptiq.ranking.mad.select_mad_pairs`).
"""

from perceptiq.models import backbone_stats as backbone_stats
from perceptiq.models import clip_prompt as clip_prompt
from perceptiq.models import ensemble as ensemble
from perceptiq.models import face_lite as face_lite
from perceptiq.models import hybrid_vit_cnn as hybrid_vit_cnn
from perceptiq.models import nss_mlp as nss_mlp
from perceptiq.models import rank_rectifier as rank_rectifier
from perceptiq.models import t2i_alignment as t2i_alignment
from perceptiq.models import t2i_structure as t2i_structure
from perceptiq.models import ultra_fr as ultra_fr
from perceptiq.models import vlm_levels as vlm_levels
from perceptiq.models import vlm_reasoning as vlm_reasoning
from perceptiq.models._base import DEFAULT_MODEL as DEFAULT_MODEL
from perceptiq.models._base import MODELS as MODELS
from perceptiq.models._base import ModelConfig as ModelConfig
from perceptiq.models._base import QualityModel as QualityModel
from perceptiq.models._base import WeightsError as WeightsError
from perceptiq.models._base import create_model as create_model
from perceptiq.models._base import list_models as list_models
from perceptiq.models._base import load_model as load_model
from perceptiq.models._base import save_model as save_model

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelConfig",
    "QualityModel",
    "WeightsError",
    "backbone_stats",
    "clip_prompt",
    "create_model",
    "ensemble",
    "face_lite",
    "hybrid_vit_cnn",
    "list_models",
    "load_model",
    "nss_mlp",
    "rank_rectifier",
    "save_model",
    "t2i_alignment",
    "t2i_structure",
    "ultra_fr",
]
