"""Time one training step per sample: augmentation on the batch, both encoders forward and backward,
the batch-all triplet loss, an Adam update. Prints measured figures; asserts nothing.

    python bench/train_step.py                      # R18/R18 at 192 px (the paper-r18 preset) and demo-cpu
    python bench/train_step.py --batch 32 --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from engine.augment import augment_images, mask_log_mels, step_generator  # noqa: E402
from engine.config.run import load_preset  # noqa: E402
from engine.losses import PairLoss  # noqa: E402
from engine.models import build_audio_encoder, build_image_encoder  # noqa: E402


def time_steps(preset: str, batch: int, steps: int, device: torch.device) -> dict[str, float]:
    cfg = load_preset(preset)
    torch.manual_seed(0)
    image, audio = build_image_encoder(cfg.model).to(device), build_audio_encoder(cfg.model).to(device)
    opt = torch.optim.Adam(list(image.parameters()) + list(audio.parameters()), lr=1e-3)
    loss_fn = PairLoss(cfg.train.loss_config)
    s = cfg.data.stored_size
    regions = torch.randint(0, 256, (batch, 3, s, s), dtype=torch.uint8, device=device)
    mels = torch.randn(batch, 1, cfg.front_end.n_mels, cfg.crop_frames, device=device)
    aug_times, step_times = [], []
    for i in range(steps + 2):  # two warm-up steps
        sync(device)
        t0 = time.perf_counter()
        g = step_generator(0, i, device)
        x = augment_images(regions, cfg.model.image_size, cfg.augment, g)
        m = mask_log_mels(mels, cfg.augment, g)
        sync(device)
        t1 = time.perf_counter()
        loss = loss_fn(image(x), audio(m))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        t2 = time.perf_counter()
        if i >= 2:
            aug_times.append(t1 - t0)
            step_times.append(t2 - t1)
    return {"augment_ms_per_sample": 1000 * statistics.median(aug_times) / batch,
            "step_ms_per_sample": 1000 * statistics.median(step_times) / batch,
            "image_px": cfg.model.image_size, "crop_frames": cfg.crop_frames}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=["paper-r18", "demo-cpu"])
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
          f"load average {os.getloadavg()[0]:.2f}, batch {args.batch}, median of {args.steps} steps")
    for preset in args.presets:
        r = time_steps(preset, args.batch, args.steps, device)
        total = r["augment_ms_per_sample"] + r["step_ms_per_sample"]
        print(f"{preset:>10}: {r['image_px']} px images, {r['crop_frames']}-frame log-mels: "
              f"{total:.2f} ms/sample per step ({r['step_ms_per_sample']:.2f} forward+backward+Adam, "
              f"{r['augment_ms_per_sample']:.3f} batch augmentation) = {1000 / total:.1f} samples/s")


if __name__ == "__main__":
    main()
