"""The main job: typed YAML configs, cached stages and ``run(config)``."""

from .._lazy import attach
from ._baselines import pixel_features, untrained_twin
from ._config import Config, default_config_path, load_config
from ._runner import RunResult, Stage, StageContext, run
from ._sections import (
    BrainConfig,
    DriverConfig,
    EncodingConfig,
    ExtractConfig,
    ModelConfig,
    ReportConfig,
    RSAConfig,
    StimulusConfig,
    TrainConfig,
    TransferConfig,
    TransferDirection,
)
from ._stages import STAGE_NAMES, default_stages

__getattr__ = attach(__name__, {}, deprecated={
    "ConfigError": ("..errors", "ConfigError", "use facebrain.errors.ConfigError"),
    "StageError": ("..errors", "StageError", "use facebrain.errors.StageError"),
})[0]

__all__ = [
    "STAGE_NAMES",
    "BrainConfig",
    "Config",
    "DriverConfig",
    "EncodingConfig",
    "ExtractConfig",
    "ModelConfig",
    "RSAConfig",
    "ReportConfig",
    "RunResult",
    "Stage",
    "StageContext",
    "StimulusConfig",
    "TrainConfig",
    "TransferConfig",
    "TransferDirection",
    "default_config_path",
    "default_stages",
    "load_config",
    "pixel_features",
    "run",
    "untrained_twin",
]
