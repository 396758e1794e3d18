"""The input conventions of the SoundingEarth authors' released encoders (torch-free).

What is known (their code, ``khdlr/SoundingEarth``): the image encoder takes the whole aerial image as RGB
scaled to [0, 1] and normalised with the ImageNet mean and std; the sound encoder takes 128-frame chunks of
a 128-band spectrogram whose values are SoundingEarth's encoding v = exp(x / 10) of a value x clipped to
[-15, +5] (a spectrogram JPEG pixel p maps linearly onto [e^-1.5, e^0.5]); a recording is the mean of its
chunk embeddings.

What is assumed: how x was computed from audio (sample rate, STFT, mel bands, level reference) is not
published. For raw audio (the microphone, atlas recordings) we take librosa's defaults, which the front-end
already reproduces: 22,050 Hz, 2048-point Hann STFT, hop 512 (43.07 frames/s, so a 128-frame chunk is
2.97 s), 128 Slaney mel bands from 0 Hz to Nyquist, power in dB re full scale. The encoding only holds if
their x was in those units: treat microphone matches as indicative (see :data:`MICROPHONE_TRUST`).
"""

from __future__ import annotations

import math
from typing import Any

from engine.audio import FrontEndConfig
from engine.data.source import SOUNDINGEARTH_IMAGE_M  # noqa: F401 - the ground width of their images

AUTHORS_REPOSITORY = "https://github.com/khdlr/SoundingEarth"
CHUNK_FRAMES = 128  # the authors' spectrogram chunks (spectrograms.h5 / their data loader)
MAX_CHUNKS = 100  # their loader's max_samples: at most 100 chunks of a recording per sample
SAMPLE_RATE = 22050
HOP_LENGTH = 512
IMAGE_SIZE = 192  # the image side of the project's paper presets; their encoder is fully convolutional

MICROPHONE_TRUST = (
    "On SoundingEarth's spectrogram JPEGs the audio input is theirs exactly. For raw audio (microphone, "
    "recordings in an atlas) the frame rate, mel bands and level reference are our assumption (librosa "
    "defaults, dB re full scale), not theirs: a different frame rate stretches the time axis, different mel "
    "edges shift the bands, and the encoding keeps only a 20 dB window, so a recording's gain moves every "
    "value. Use microphone matches as a qualitative hint (which kind of place, not which place), compare "
    "against matches of known recordings, and prefer SoundingEarth spectrograms for any measurement.")


def soundingearth_front_end() -> FrontEndConfig:
    """The front-end that reproduces the authors' spectrogram encoding as closely as is known.

    The chunk length is exactly 128 frames and chunks do not overlap (their spectrogram chunks).
    """
    chunk_seconds = CHUNK_FRAMES * HOP_LENGTH / SAMPLE_RATE
    return FrontEndConfig(sample_rate=SAMPLE_RATE, n_fft=2048, hop_length=HOP_LENGTH, n_mels=128, f_min=0.0,
                          f_max=SAMPLE_RATE / 2, db_floor=-100.0, normalisation="soundingearth_exp",
                          chunk_seconds=chunk_seconds, chunk_hop_seconds=chunk_seconds, max_chunks=MAX_CHUNKS,
                          min_seconds=0.5)


def conventions(front_end: FrontEndConfig, image_size: int) -> dict[str, Any]:
    """The ``conventions`` section of an imported run's config.json and of its bundle manifest."""
    low, high = math.exp(-1.5), math.exp(0.5)
    return {
        "image": {
            "status": "known",
            "input": f"the whole aerial image, RGB, resized to {image_size} x {image_size} (no central crop: "
                     "the authors trained on whole images)",
            "normalisation": "scaled to [0, 1], then ImageNet mean and std (their Normalize transform); "
                             "inside the image graph",
            "head": "their 1x1-convolution fc applied to the feature map then averaged; stored as a linear head "
                    "after average pooling, which is the same map (both are linear)",
        },
        "audio": {
            "soundingearth_spectrograms": {
                "status": "known, exact",
                "rule": f"pixel p -> v = p * (e^0.5 - e^-1.5) / 255 + e^-1.5, v in [{low:.6f}, {high:.6f}]; "
                        "the data layer reads x = 10 ln v, the front-end's soundingearth_exp gives v back",
                "use": "evaluate or fine-tune on SoundingEarth with data.audio_source spectrogram (the default "
                       "when spectrograms/ exists)",
            },
            "raw_audio": {
                "status": "assumed (their audio parameters are not published)",
                "rule": "log-mel power in dB re full scale, clipped to [-15, +5] dB, stored as exp(x / 10)",
                "chosen": {"sample_rate": front_end.sample_rate, "n_fft": front_end.n_fft,
                           "hop_length": front_end.hop_length, "frames_per_second": round(front_end.frames_per_second, 3),
                           "n_mels": front_end.n_mels, "mel_scale": "Slaney, area-normalised (librosa default)",
                           "f_min": front_end.f_min, "f_max": front_end.f_max},
                "why": "librosa's defaults (22,050 Hz, n_fft 2048, hop 512, 128 mels) match the 128 rows of their "
                       "spectrograms and are the usual choice in PyTorch audio code of that time; the front-end "
                       "computes exactly those; the clip window and exp(x/10) are SoundingEarth's encoding",
                "trust": MICROPHONE_TRUST,
            },
            "chunking": {"chunk_frames": CHUNK_FRAMES, "hop_frames": CHUNK_FRAMES, "aggregate": "mean",
                         "max_chunks": MAX_CHUNKS,
                         "difference": "a remainder of at least 64 frames adds one end-aligned chunk, and more than "
                                       f"{MAX_CHUNKS} chunks are thinned evenly; the authors drop the remainder "
                                       f"and take {MAX_CHUNKS} consecutive chunks"},
        },
        "distance": "euclidean, not L2-normalised (their TripletLoss on raw embeddings)",
    }
