"""Where and how reproducibly torch runs: the device an estimator uses, seeded blocks.

Torch only: no scikit-learn here.
"""

import contextlib

import torch

__all__ = ["resolve_device", "seeded"]

# torch device types that hold values and run computations
_COMPUTE_DEVICES = ("cpu", "cuda", "mps", "xpu")


def resolve_device(device):
    """Map ``"auto"`` to ``"cuda"`` when a GPU is available, else ``"cpu"``; check the rest.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns
    -------
    device : str

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}); use device='cpu' or device='auto'."
        )
    try:
        kind = torch.device(device).type
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from exc
    if kind not in _COMPUTE_DEVICES:
        # "meta" tensors have shapes but no values: a network there computes nothing
        raise ValueError(f"device={device!r} cannot run a network; use 'auto', 'cpu' or 'cuda'")
    return device


@contextlib.contextmanager
def seeded(seed, device="cpu"):
    """Run a block with torch's RNG seeded, leaving the caller's global RNG state untouched.

    Everything inside that draws from torch's default generator (weight initialisation,
    augmentation, dropout, sampling) is then reproducible, and the user's own random streams
    are not disturbed by fitting an estimator. On a GPU, cuDNN is also switched to its
    deterministic algorithms for the block (and PyTorch warns about any operation that has no
    deterministic implementation), so the same seed gives the same result there too.

    Examples
    --------
    >>> with seeded(0):
    ...     a = torch.rand(2)
    >>> with seeded(0):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    devices = []
    on_gpu = str(device).startswith("cuda") and torch.cuda.is_available()
    if on_gpu:
        devices = [torch.device(device).index or 0]
    saved = (
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        if on_gpu:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            if on_gpu:
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[:2]
                torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
