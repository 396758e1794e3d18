"""Decode audio files through the front-end and print their duration, rate and log-mel shape.

Useful to check that a file is readable before training or querying with it.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="audio files (WAV, FLAC, OGG, MP3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per file")


def run(args: argparse.Namespace) -> int:
    from engine.audio import FrontEndConfig, chunk_spans, file_log_mel, probe_audio
    from engine.cli_output import json_line

    cfg = FrontEndConfig()
    for path in args.files:
        info = probe_audio(path)
        mel = file_log_mel(path, cfg)
        row = {"file": str(path), "sample_rate": info.sample_rate, "channels": info.channels,
               "seconds": round(info.duration, 3), "log_mel_shape": list(mel.shape),
               "chunks": len(chunk_spans(mel.shape[1], cfg)), "silent": bool(not mel.any())}
        print(json_line(row) if args.json else
              f"{path}: {row['seconds']} s, {info.sample_rate} Hz, {info.channels} ch -> log-mel "
              f"{mel.shape[0]}x{mel.shape[1]}, {row['chunks']} chunk(s){', silent' if row['silent'] else ''}")
    return 0
