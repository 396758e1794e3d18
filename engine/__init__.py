"""Soundscape Mapper engine: data, models, losses, training, evaluation, export and atlas building.

The torch-free modules (the desktop app uses them) are listed in pyproject.toml's import contract
"The engine's portable modules stay torch-free"; ``docs/ARCHITECTURE.md`` maps the packages.
"""

__version__ = "0.1.0"
