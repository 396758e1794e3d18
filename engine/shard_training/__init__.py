"""Training from prepared shards (``train --shards``): shard loader, batched JPEG decoding and augmentation
on the device, prefetching on a side stream, compute switches (bf16, channels_last, torch.compile) and DDP
with a gathered loss.

Every function takes the device as a parameter and runs on CPU tensors too (that is how CI tests it);
CUDA-only features are switched off or fall back on CPU. The shards are made by :mod:`engine.shards`.
"""
