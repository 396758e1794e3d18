"""Soundscape Mapper desktop app: PySide6 + pyqtgraph + onnxruntime + sounddevice, never torch.

- ``main.py``: the ``soundscape`` options; ``launch.py`` builds state -> task runner -> controller ->
  window and passes them down (no globals).
- ``state/``: plain Python, observable (``Event``): project, selection, query, audio, tasks, training.
- ``services/``: no Qt: geo, settings (platformdirs JSON), ring buffer, audio I/O (sounddevice), project
  (bundle + atlas), search, spectrogram, map layout, demo, training (the engine as a subprocess).
- ``workers.py``: the one module with threads (``TaskRunner``: ``fn(job)`` on a Python thread, results back
  through queued Qt signals).
- ``controllers/``: what a click does; ``widgets/``: Qt views that render the state.
"""

__version__ = "0.1.0"
