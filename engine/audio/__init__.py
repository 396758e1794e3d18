"""Torch-free audio front-end shared by the engine and the app."""

from engine.audio.front_end import (
    SUPPORTED_EXTENSIONS,
    AudioInfo,
    FrontEndConfig,
    StreamingLogMel,
    chunk_log_mel,
    chunk_spans,
    file_log_mel,
    iter_audio_blocks,
    load_audio,
    log_mel_db,
    mel_filterbank,
    normalise,
    probe_audio,
    resample,
    samples_log_mel,
)

__all__ = [
    "SUPPORTED_EXTENSIONS", "AudioInfo", "FrontEndConfig", "StreamingLogMel", "chunk_log_mel", "chunk_spans",
    "file_log_mel", "iter_audio_blocks", "load_audio", "log_mel_db", "mel_filterbank", "normalise",
    "probe_audio", "resample", "samples_log_mel",
]
