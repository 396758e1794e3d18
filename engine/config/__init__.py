"""Every setting of the engine, torch-free: what a preset, RUN/config.json and a bundle's front-end hold.

One dataclass per section, each read strictly (:func:`engine.config.fields.known_fields`: unknown keys are
an error): ``model`` (:mod:`~engine.config.model`), ``front_end`` (:mod:`~engine.config.front_end`),
``data`` (:mod:`~engine.config.data`), ``augment`` (:mod:`~engine.config.augment`), the loss
(:mod:`~engine.config.loss`), ``train`` and the whole run (:mod:`~engine.config.run`, which also lists and
loads the presets in ``engine/config/presets/``). The torch modules that use them (models, augment,
losses, train) import them from here, and so does the app.
"""

from engine.config.augment import AugmentConfig
from engine.config.data import DataConfig
from engine.config.fields import known_fields
from engine.config.front_end import FrontEndConfig
from engine.config.loss import LOSSES, LossConfig
from engine.config.model import ARCH_NAMES, ModelConfig
from engine.config.run import RunConfig, TrainConfig, load_preset, preset_names

__all__ = [
    "ARCH_NAMES", "LOSSES", "AugmentConfig", "DataConfig", "FrontEndConfig", "LossConfig", "ModelConfig",
    "RunConfig", "TrainConfig", "known_fields", "load_preset", "preset_names",
]
