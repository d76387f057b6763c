"""Check the ``device="cuda"`` path on a GPU machine and compare GPU training speed.

Not part of ``make bench`` (CI and developer machines have no GPU). Run on a machine with a
CUDA GPU: ``python benchmarks/gpu_check.py``. It checks that an estimator trains and infers on
the GPU, that the same ``random_state`` gives the same output there, that pickling round-trips,
and prints the estimator's training images/s next to a plain PyTorch loop on the same module.
"""

import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skastro import ConvAutoencoder
from skastro.nn.conv import ConvAutoencoderModule


def plain_loop_epoch_seconds(X, epochs=3):
    """Per-epoch times of a hand-written loop with the data already on the GPU."""
    module = ConvAutoencoderModule((1, 64, 64), (16, 32, 64), 16).cuda()
    optimizer = torch.optim.AdamW(module.parameters(), 1e-3)
    data = torch.from_numpy(X).cuda()
    data = (data - data.mean()) / data.std()
    torch.cuda.synchronize()
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(data), device="cuda")
        for i in range(0, len(data), 64):
            batch = data[order[i : i + 64]]
            optimizer.zero_grad()
            reconstruction, _ = module(batch)
            loss = torch.nn.functional.mse_loss(reconstruction, batch)
            loss.backward()
            optimizer.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main():
    print(torch.__version__, torch.cuda.get_device_name(0), "numpy", np.__version__)
    X = np.random.default_rng(0).random((2048, 1, 64, 64), dtype=np.float32)
    ae = ConvAutoencoder(16, max_epochs=3, device="auto", random_state=0, ssim_weight=0.5).fit(X)
    print("device_", ae.device_, "module on", next(ae.module_.parameters()).device)
    Z = ae.transform(X)
    print("transform", Z.shape, Z.dtype, "finite:", bool(np.isfinite(Z).all()))
    print("reconstruct", ae.reconstruct(X).shape)
    again = ConvAutoencoder(16, max_epochs=3, device="cuda", random_state=0, ssim_weight=0.5)
    print("same seed, max |dZ| on cuda:", float(np.abs(again.fit(X).transform(X) - Z).max()))
    clone = pickle.loads(pickle.dumps(ae))
    print("pickle round trip, max |dZ|:", float(np.abs(clone.transform(X) - Z).max()))
    plain = plain_loop_epoch_seconds(X)
    est = ConvAutoencoder(16, max_epochs=3, device="cuda", random_state=1).fit(X)
    wrapped = [row["dur"] for row in est.history_]
    print("plain loop img/s", [round(len(X) / t) for t in plain])
    print("estimator img/s", [round(len(X) / t) for t in wrapped])
    print("ratio (median)", round(float(np.median(plain) / np.median(wrapped)), 3))
    big = np.repeat(X, 8, axis=0)
    start = time.perf_counter()
    ae.transform(big)
    print("transform img/s", round(len(big) / (time.perf_counter() - start)))


if __name__ == "__main__":
    main()
