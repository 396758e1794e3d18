"""The audio front-end's log-mel on a torch device, with torchaudio's transforms.

The torch-free front-end (:mod:`engine.audio.front_end`) is the one definition of the numbers; this module
computes the same log-mel on the GPU for the places where the host would otherwise set the pace (``prepare
--decoder cuda`` and ``train --audio-source raw`` on CUDA). Same framing (a centred STFT with zero
padding: ``1 + samples // hop`` frames), the same periodic Hann window, the same Slaney filterbank
(torchaudio's ``melscale_fbanks(norm="slaney", mel_scale="slaney")``, which a test holds to the front-end's
matrix), the same absolute dB floor and the same per-clip standardisation. ``tests/engine/test_device_log_mel.py``
holds it to the front-end on the real recordings; the tolerance is stated there.

Decoding and resampling stay on the host (libsndfile and soxr in worker processes): only the STFT, the
filterbank and the normalisation move.
"""

from __future__ import annotations

import torch
from torch import nn
from torchaudio.functional import melscale_fbanks
from torchaudio.transforms import Spectrogram

from engine.audio.front_end import FrontEndConfig


class DeviceLogMel(nn.Module):
    """Mono samples at ``cfg.sample_rate`` -> the front-end's log-mel, (n_mels, 1 + N // hop) float32.

    Args:
        cfg: the front-end parameters (a bundle's or a run's).
        dtype: the STFT's precision. float32 (the default) is what the front-end computes in; float64 is
            there for checks (both stay within 0.01 dB of the front-end on the real recordings).
    """

    def __init__(self, cfg: FrontEndConfig, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.cfg = cfg
        self.dtype = dtype
        # torch.hann_window is periodic by default: the front-end's window.
        self.spectrogram = Spectrogram(n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.n_fft,
                                       window_fn=torch.hann_window, power=2.0, center=True, pad_mode="constant",
                                       normalized=False, wkwargs={"dtype": dtype})
        fbanks = melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate,
                                 norm="slaney", mel_scale="slaney")
        self.register_buffer("fbanks", fbanks.T.contiguous().to(dtype), persistent=False)
        self.floor = 10.0 ** (cfg.db_floor / 10.0)

    def db(self, samples: torch.Tensor) -> torch.Tensor:
        """Log-mel power in dB, not normalised: (N,) -> (n_mels, T) or (B, N) -> (B, n_mels, T)."""
        power = self.spectrogram(samples.to(self.dtype))          # (..., 1 + n_fft/2, T)
        mel = torch.matmul(self.fbanks, power)                    # (..., n_mels, T)
        return (10.0 * torch.log10(mel.clamp_min(self.floor))).to(torch.float32)

    def normalise(self, db: torch.Tensor) -> torch.Tensor:
        """The front-end's per-clip standardisation of one (n_mels, T) clip (statistics in float64)."""
        if self.cfg.normalisation == "none":
            return db
        wide = db.to(torch.float64)
        mean = wide.mean()
        std = wide.std(correction=0).clamp_min(self.cfg.std_floor_db)
        return ((wide - mean) / std).to(torch.float32)

    def forward(self, samples: torch.Tensor) -> torch.Tensor:
        """One clip's normalised log-mel: (N,) samples -> (n_mels, 1 + N // hop)."""
        if samples.dim() != 1:
            raise ValueError(f"expected one mono clip (N,), got shape {tuple(samples.shape)}")
        return self.normalise(self.db(samples))


def device_log_mels(clips: list[torch.Tensor], module: DeviceLogMel) -> list[torch.Tensor]:
    """Normalised log-mels of clips of different lengths, each computed on the module's device.

    Clips of one length are stacked into one STFT call (a prepared dataset's clips often share a length).
    """
    out: list[torch.Tensor | None] = [None] * len(clips)
    by_length: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        by_length.setdefault(int(clip.shape[-1]), []).append(i)
    for idx in by_length.values():
        batch = torch.stack([clips[i] for i in idx])
        dbs = module.db(batch)
        for j, i in enumerate(idx):
            out[i] = module.normalise(dbs[j])
    return [o for o in out if o is not None]
