"""``soundscape-engine``: the engine's command line. ``main(argv)`` is callable from tests.

Each sub-command lives in ``engine.commands.<name>`` and exposes ``add_arguments(parser)`` and
``run(args) -> int``. Command modules import torch only inside ``run`` so that ``--help`` and the
torch-free commands (``audio-info``, ``demo-world``, ``atlas``) work in an install without torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from engine.cli_output import exit_quietly_on_broken_pipe, package_version
from engine.errors import Cancelled, UserInputError

# (command, module, one-line help); the order is the order --help lists them.
COMMANDS: list[tuple[str, str, str]] = [
    ("demo-world", "engine.commands.demo_world", "generate the synthetic demo world (a pair table)"),
    ("campaign", "engine.commands.campaign", "scan recorder folders (AudioMoth, Song Meter, GUANO) into a campaign"),
    ("audio-info", "engine.commands.audio_info", "decode an audio file through the front-end and describe it"),
    ("train", "engine.commands.train", "train the image and audio encoders on paired data"),
    ("evaluate", "engine.commands.evaluate", "cross-modal retrieval metrics of a trained run (paper protocol)"),
    ("export", "engine.commands.export", "export a trained run as a model bundle (ONNX encoders + manifest)"),
    ("import-weights", "engine.commands.import_weights",
     "import the SoundingEarth authors' released weights as a run folder"),
    ("embed", "engine.commands.embed", "print embeddings of audio files or images (bundle or PyTorch run)"),
    ("atlas", "engine.commands.atlas", "build, query or re-embed an atlas of imagery tiles and recordings"),
    ("downstream", "engine.commands.downstream", "transfer protocols: scene classification, ADVANCE, DeepGlobe"),
    ("indices", "engine.commands.indices", "acoustic indices (ACI, ADI, AEI, BI, NDSI, H ...) of recordings, as CSV"),
    ("prepare", "engine.commands.prepare", "build prepared shards (tar) of a dataset for train --shards"),
]

log = logging.getLogger("engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundscape-engine",
        description="Soundscape Mapper engine: train and evaluate audiovisual encoders, export model "
                    "bundles, build atlases.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run one sub-command, and turn user errors into one-line messages.

    Returns the exit status: 0 success, 1 failure, 2 bad input or usage, 130 cancelled, 141 the reader
    of standard output went away (``| head``).
    """
    return exit_quietly_on_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except UserInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled; work done so far was kept", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted; work done so far was kept", file=sys.stderr)
        return 130
    except OSError as err:
        from engine.files import disk_full_error, is_disk_full

        if not is_disk_full(err):
            raise
        # A write outside the atomic writer (which names the bytes) ran out of space: still one line.
        print(f"error: {disk_full_error(err.filename or '.', None)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
