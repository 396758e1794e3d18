"""The bundle's two encoders through onnxruntime on the CPU (torch-free).

Sessions are created on first use, so opening a bundle at app launch costs only the manifest check.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from engine.audio import chunk_log_mel, file_log_mel, samples_log_mel
from engine.bundle.format import MANIFEST_FILE, Bundle, load_bundle
from engine.errors import BundleError, UserInputError, brief

log = logging.getLogger(__name__)

DEFAULT_IMAGE_BATCH = 32


def default_threads() -> int:
    """Intra-op threads: the usable cores, at most 8 (beyond that a single ResNet hardly gains)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(8, cores))


class BundleEncoders:
    """Embed images, log-mels, audio files and in-memory clips with a model bundle.

    Args:
        bundle: a :class:`Bundle` or the path of a bundle folder.
        threads: onnxruntime intra-op threads (default :func:`default_threads`).
        image_batch: images per onnxruntime call in :meth:`embed_images`.
        providers: onnxruntime execution providers in order of preference (default: the CPU).

    Thread safety: onnxruntime sessions may be run from several threads; session creation is locked.
    """

    def __init__(self, bundle: Bundle | str | Path, threads: int | None = None,
                 image_batch: int = DEFAULT_IMAGE_BATCH, providers: list[str] | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        self.providers = list(providers or ["CPUExecutionProvider"])  # e.g. CUDA first on a GPU worker
        self.threads = threads or default_threads()
        self.image_batch = max(1, int(image_batch))
        self._sessions: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def embedding_dim(self) -> int:
        return self.bundle.embedding_dim

    @property
    def image_size(self) -> int:
        return self.bundle.image_size

    def _session(self, which: str):  # -> onnxruntime.InferenceSession
        with self._lock:
            if which not in self._sessions:
                import onnxruntime as ort  # deferred: ~0.2 s of import the CLI's --help does not need

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = self.threads
                opts.inter_op_num_threads = 1
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                path = self.bundle.image_model if which == "image" else self.bundle.audio_model
                try:
                    self._sessions[which] = ort.InferenceSession(str(path), opts,
                                                                 providers=self.providers)
                except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
                    raise BundleError(path, f"onnxruntime cannot load it ({brief(err)})",
                                      "re-export the bundle or update onnxruntime") from None
                self._check_graph(which, self._sessions[which])
            return self._sessions[which]

    def _check_graph(self, which: str, session) -> None:
        """Hold the manifest's facts to the graph's own shapes: the hashes cover the .onnx files but not
        manifest.json, so an edited ``embedding_dim``, ``image.size`` or ``n_mels`` shows up here, as one
        line, instead of as an onnxruntime error deep inside a build."""
        b = self.bundle
        name, expected_input = (("image", {1: b.image_size, 2: b.image_size, 3: 3}) if which == "image"
                                else ("log_mel", {1: 1, 2: b.front_end.n_mels}))
        facts = {1: "image.size", 2: "image.size", 3: "channels"} if which == "image" else \
            {1: "channels", 2: "audio.front_end.n_mels"}
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        manifest = b.path / MANIFEST_FILE
        fix = "the manifest does not match its model files; restore manifest.json or re-export the bundle"
        graph = b.image_model.name if which == "image" else b.audio_model.name
        if name not in inputs or "embedding" not in outputs:
            raise BundleError(manifest, f"{graph} has inputs {sorted(inputs)} and outputs {sorted(outputs)}, not "
                              f"'{name}' and 'embedding'", fix)
        shape = inputs[name]
        for axis, value in expected_input.items():
            if len(shape) > axis and isinstance(shape[axis], int) and shape[axis] != value:
                raise BundleError(manifest, f"says {facts[axis]} {value}, but {graph} takes {shape[axis]}", fix)
        out = outputs["embedding"]
        if len(out) == 2 and isinstance(out[1], int) and out[1] != b.embedding_dim:
            raise BundleError(manifest, f"says embedding_dim {b.embedding_dim}, but {graph} gives {out[1]}-d "
                              "embeddings", fix)

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """Embed uint8 RGB images.

        Args:
            images: (N, S, S, 3) uint8 (or one (S, S, 3) image), S = ``bundle.image_size``;
                use :func:`engine.inference.images.prepare_image` for other sizes.

        Returns:
            (N, D) float32.
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        s = self.bundle.image_size
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (s, s, 3):
            raise UserInputError("images", f"expected uint8 (N, {s}, {s}, 3), got {images.dtype} {images.shape}",
                                 "resize with engine.inference.images.prepare_image")
        out = np.empty((images.shape[0], self.embedding_dim), np.float32)
        session = self._session("image")
        for start in range(0, images.shape[0], self.image_batch):
            batch = np.ascontiguousarray(images[start:start + self.image_batch])
            out[start:start + len(batch)] = session.run(["embedding"], {"image": batch})[0]
        return out

    def embed_log_mel_chunks(self, chunks: np.ndarray) -> np.ndarray:
        """Embed a batch of chunks (n, 1, n_mels, T) -> (n, D), no averaging."""
        chunks = np.ascontiguousarray(chunks, dtype=np.float32)
        return self._session("audio").run(["embedding"], {"log_mel": chunks})[0]

    def embed_log_mel(self, log_mel: np.ndarray) -> np.ndarray:
        """Embed a whole clip's normalised log-mel (n_mels, T) by the chunk rule: the mean of its chunk
        embeddings. Returns (D,) float32."""
        log_mel = np.asarray(log_mel, dtype=np.float32)
        n_mels = self.bundle.front_end.n_mels
        if log_mel.ndim != 2 or log_mel.shape[0] != n_mels or log_mel.shape[1] < 1:
            raise UserInputError("log_mel", f"expected ({n_mels}, T), got {log_mel.shape}",
                                 "compute it with engine.audio.file_log_mel and the bundle's front_end")
        chunks = chunk_log_mel(log_mel, self.bundle.front_end)
        return self.embed_log_mel_chunks(chunks).mean(axis=0)

    def embed_audio_file(self, path: str | Path) -> np.ndarray:
        """Embed an audio file of any length (streamed through the front-end). Returns (D,).

        Raises:
            AudioFileError: the front-end cannot read the file, or it is too short.
        """
        return self.embed_log_mel(file_log_mel(path, self.bundle.front_end))

    def embed_samples(self, samples: np.ndarray, rate: int, source: str = "recording") -> np.ndarray:
        """Embed an in-memory clip (mono or (n, channels)) at any sample rate. Returns (D,)."""
        return self.embed_log_mel(samples_log_mel(samples, rate, self.bundle.front_end, source=source))
