"""The GPU training path: shard loader, batched device decoding and augmentation, prefetching on a side
stream, compute switches (bf16, channels_last, torch.compile) and DDP with a gathered loss.

Every function takes the device as a parameter and runs on CPU tensors too (that is how CI tests it);
CUDA-only features are switched off or fall back on CPU.
"""
