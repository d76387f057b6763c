"""GPU speed of every deep estimator: training and transform throughput, batch sizes, bf16.

Goals (issue 23), each judged in ``results/gpu.md``:

* every estimator trains at >= 0.95 of a plain, hand-written PyTorch loop over the same module,
  loss and batch size (data already on the GPU, the same fused AdamW);
* the default ``batch_size="auto"`` trains within 1.25x of the fastest batch size of the ladder
  32 ... 1024;
* EquivariantAutoencoder's transform runs at >= 2/3 of ConvAutoencoder's with the same widths;
* every estimator fits, transforms, reconstructs/denoises and scores on the GPU, and two fits
  with the same ``random_state`` give the same output there.

Per estimator it measures training images/s for each batch size of the ladder (two epochs on
``max(2048, 16 x batch)`` images of 64x64, the second epoch timed from ``history_``), what
``batch_size="auto"`` picks for 32,768 images, bf16 against float32 training at that size, the
plain loop, and transform images/s in float32 and bf16. A convergence table checks that the
larger batches ``"auto"`` may pick (with the square-root learning-rate rule) reach the same
training loss in the same number of epochs. Everything runs within ``--budget`` seconds
(default 270): measurements that would start later are skipped and marked so.

Run on a CUDA machine from the repository root (no installation needed; see README.md in this
folder for the wheels a bare GPU machine lacks)::

    python benchmarks/bench_gpu.py                 # writes benchmarks/results/gpu.md
    python benchmarks/bench_gpu.py --quick --device cpu --out /tmp/gpu-cpu.md   # smoke test

On a CPU the figures mean nothing (and bf16 falls back to float32); ``--quick`` uses tiny
networks and 16x16 images so that the script's every path runs in a minute or two.
"""

import argparse
import pickle
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch
from _common import RESULTS_DIR, machine_line, markdown_table

from skastro._hardware import BATCH_LADDER, batch_size_candidates, scaled_lr
from skastro._registry import TINY_SETTINGS, public_class

GOAL_PLAIN = 0.95
GOAL_DEFAULT = 1.25
GOAL_EQUIVARIANT = 2 / 3
# estimator -> number of bands of its images (CondVAEClassifier: the SDSS u, g, r, i, z)
ESTIMATORS = {
    "ConvAutoencoder": 1,
    "VICRegEmbedder": 1,
    "ContrastiveDenoiser": 1,
    "VariationalAutoencoder": 1,
    "CondVAEClassifier": 5,
    "EquivariantAutoencoder": 1,
    "HypercolumnSegmenter": 1,
}
INFERENCE = ("reconstruct", "denoise", "predict", "decision_function")


class Settings:
    """Sizes of one run: the full GPU run or the ``--quick`` smoke test."""

    def __init__(self, quick):
        self.quick = quick
        self.size = 16 if quick else 64
        self.auto_images = 256 if quick else 32_768  # the data set "auto" chooses for
        self.ladder = (32, 64) if quick else BATCH_LADDER
        self.min_images = 128 if quick else 2048
        self.per_batch = 4 if quick else 16
        self.transform_images = 256 if quick else 32_768
        self.convergence_images = 256 if quick else 16_384
        self.convergence_epochs = 2 if quick else 5

    def params(self, name):
        if not self.quick:
            return {}
        params = dict(TINY_SETTINGS[name])
        for key in ("image_shape", "max_epochs", "batch_size"):
            params.pop(key, None)
        return params

    def images_for(self, batch_size):
        return min(self.auto_images, max(self.min_images, self.per_batch * batch_size))


def make_images(n, bands=1, size=64, seed=0):
    """``n`` noisy blob images ``(n, bands, size, size)``: 64 widths, a pool of noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - size / 2
    widths = np.linspace(size / 20, size / 5, 64, dtype=np.float32)[:, None, None]
    templates = np.exp(-(xx**2 + yy**2) / (2 * widths**2)).astype(np.float32)
    noise = 0.05 * np.random.default_rng(1).standard_normal((512, size, size), np.float32)
    brightness = np.linspace(0.5, 1.5, bands, dtype=np.float32)[None, :, None, None]
    images = templates[rng.integers(0, 64, n)][:, None] * brightness
    return np.ascontiguousarray(images + noise[rng.integers(0, 512, (n, bands))])


class Budget:
    def __init__(self, seconds):
        self.end = time.perf_counter() + seconds

    def left(self):
        return self.end - time.perf_counter()


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _epoch_rate(estimator, n):
    return n / estimator.history_[-1]["dur"]


def fit(name, settings, device, X, **params):
    cls = public_class(name)
    full = {**settings.params(name), "device": device, "random_state": 0, **params}
    return cls(**full).fit(X)


def plain_loop_rate(estimator, X, batch_size, device, epochs=2):
    """Images/s of a hand-written loop: same module, loss hooks, batch size and optimizer."""
    module = estimator._build_module(tuple(X.shape[1:])).to(device).train()
    kind = torch.device(device).type
    fused = {"fused": True} if kind == "cuda" or torch.__version__ >= "2.4" else {}
    optimizer = torch.optim.AdamW(
        module.parameters(), estimator.lr_, weight_decay=estimator.weight_decay, **fused
    )
    data = torch.from_numpy(X).to(device)
    n = len(data) // batch_size * batch_size
    seconds = []
    for _ in range(epochs):
        _sync(device)
        start = time.perf_counter()
        order = torch.randperm(len(data), device=device)
        for first in range(0, n, batch_size):
            batch = data[order[first : first + batch_size]]
            optimizer.zero_grad()
            terms = estimator._training_terms(module, batch, training=True)
            terms["loss"].backward()
            optimizer.step()
        _sync(device)
        seconds.append(time.perf_counter() - start)
    return n / seconds[-1]


def transform_rate(estimator, X, device, precision):
    estimator.set_params(precision=precision)
    try:
        estimator.transform(X[:1024])  # warm-up (allocator, kernels)
        _sync(device)
        start = time.perf_counter()
        estimator.transform(X)
        _sync(device)
        return len(X) / (time.perf_counter() - start)
    finally:
        estimator.set_params(precision="32")


def inference_checks(estimator, X):
    """Run every inference method once; return "ok" or the first failure."""
    try:
        Z = estimator.transform(X)
        assert np.isfinite(Z).all(), "transform gave non-finite values"
        for method in INFERENCE:
            if hasattr(estimator, method):
                getattr(estimator, method)(X)
        assert np.isfinite(estimator.score(X)), "score is not finite"
        return "ok"
    except Exception as exc:  # reported in the table, not raised: one estimator's bug
        return f"FAILS: {type(exc).__name__}: {str(exc)[:120]}"


def measure_estimator(name, settings, device, budget, log):
    bands = ESTIMATORS[name]
    cls = public_class(name)
    reference = cls._default_batch_size
    X_auto = make_images(settings.auto_images, bands, settings.size, seed=0)
    row = {"estimator": name}
    # what "auto" picks for a data set of this size (no training: max_epochs=0)
    chosen = fit(name, settings, device, X_auto, max_epochs=0).batch_size_
    row["auto_batch"] = chosen
    rates, models, losses = {}, {}, {}
    for batch_size in settings.ladder:
        if budget.left() < 20 and batch_size != chosen:
            log(f"  {name} batch {batch_size}: skipped (time budget)")
            continue
        n = settings.images_for(batch_size)
        X = X_auto[:n]
        lr = scaled_lr(cls().lr, batch_size, reference) if batch_size > reference else None
        extra = {} if lr is None else {"lr": lr}
        model = fit(name, settings, device, X, batch_size=batch_size, max_epochs=2, **extra)
        rates[batch_size], models[batch_size] = _epoch_rate(model, n), model
        losses[batch_size] = model.history_[-1]["train_loss"]
        log(f"  {name} batch {batch_size}: {rates[batch_size]:.0f} img/s")
    best = max(rates, key=rates.get)
    row.update(
        train_default=rates.get(chosen),
        best_batch=best,
        train_best=rates[best],
        best_over_default=rates[best] / rates[chosen] if chosen in rates else None,
    )
    model = models.get(chosen) or models[best]
    batch = model.batch_size_
    n = settings.images_for(batch)
    if budget.left() > 10:
        bf16 = fit(name, settings, device, X_auto[:n], batch_size=batch, max_epochs=2,
                   precision="bf16", lr=model.lr_)  # fmt: skip
        row["train_bf16"] = _epoch_rate(bf16, n)
        row["bf16_over_fp32"] = row["train_bf16"] / rates[batch]
    if budget.left() > 10:
        row["plain_loop"] = plain_loop_rate(model, X_auto[:n], batch, device)
        row["over_plain"] = rates[batch] / row["plain_loop"]
    X_t = make_images(settings.transform_images, bands, settings.size, seed=1)
    row["transform_fp32"] = transform_rate(model, X_t, device, "32")
    row["transform_bf16"] = transform_rate(model, X_t, device, "bf16")
    row["on_device"] = inference_checks(model, X_t[:256])
    ladder = {"estimator": name, **{f"b{b}": rates.get(b) for b in settings.ladder}}
    ladder.update({f"loss b{b}": losses.get(b) for b in settings.ladder})
    return row, ladder, model


def equivariant_vs_conv(settings, device, log):
    """Transform images/s of EquivariantAutoencoder and ConvAutoencoder with the same widths."""
    params = settings.params("EquivariantAutoencoder")
    widths = tuple(params.get("widths", public_class("EquivariantAutoencoder")().widths))
    n_components = params.get("n_components", 16)
    X = make_images(settings.min_images, 1, settings.size)
    X_t = make_images(settings.transform_images, 1, settings.size, seed=1)
    rows = []
    for name in ("ConvAutoencoder", "EquivariantAutoencoder"):
        extra = {"widths": widths, "n_components": n_components}
        model = fit(name, settings, device, X, max_epochs=1, **extra)
        rows.append({"estimator": name, "widths": str(widths), "transform_fp32":
                     transform_rate(model, X_t, device, "32")})  # fmt: skip
        log(f"  {name} widths {widths}: transform {rows[-1]['transform_fp32']:.0f} img/s")
    ratio = rows[1]["transform_fp32"] / rows[0]["transform_fp32"]
    rows[1]["ratio_to_conv"] = ratio
    return rows, ratio


def convergence(settings, device, budget, log):
    """Final training loss after the same epochs at larger batches, lr by the sqrt rule."""
    rows = []
    for name in ("ConvAutoencoder", "VariationalAutoencoder"):
        cls = public_class(name)
        reference, lr = cls._default_batch_size, cls().lr
        X = make_images(settings.convergence_images, 1, settings.size, seed=2)
        base = None
        for batch_size in (reference, 256, 1024):
            if budget.left() < 15:
                log(f"  convergence {name} {batch_size}: skipped (time budget)")
                continue
            for rule in ("sqrt", "same lr") if batch_size != reference else ("reference",):
                used = scaled_lr(lr, batch_size, reference) if rule == "sqrt" else lr
                model = fit(name, settings, device, X, batch_size=batch_size, lr=used,
                            max_epochs=settings.convergence_epochs)  # fmt: skip
                loss = model.history_[-1]["train_loss"]
                base = loss if base is None else base
                steps = len(X) // batch_size
                rows.append({"estimator": name, "batch": batch_size, "lr rule": rule,
                             "lr": used, "steps/epoch": steps, "final loss": loss,
                             "loss / reference": loss / base,
                             "auto may pick": "yes" if batch_size in
                             batch_size_candidates(reference, len(X)) else "no"})  # fmt: skip
    return rows


def determinism(settings, device):
    X = make_images(settings.min_images, 1, settings.size)
    params = {"max_epochs": 2, "augment": True}
    a = fit("ConvAutoencoder", settings, device, X, **params)
    b = fit("ConvAutoencoder", settings, device, X, **params)
    same_seed = float(np.abs(a.transform(X) - b.transform(X)).max())
    clone = pickle.loads(pickle.dumps(a))
    round_trip = float(np.abs(clone.transform(X) - a.transform(X)).max())
    return same_seed, round_trip


def _goal(value, goal, higher=True):
    if value is None:
        return "not measured"
    met = value >= goal if higher else value <= goal
    return "met" if met else f"MISSED ({value:.3g} vs {goal:.3g})"


def run(quick=False, device="cuda", budget=270.0, only=None, log=print):
    settings = Settings(quick)
    budget = Budget(budget)
    names = [n for n in ESTIMATORS if not only or n in only]
    main_rows, ladder_rows = [], []
    for name in names:
        log(f"{name} ({budget.left():.0f} s left)")
        try:
            row, ladder, _ = measure_estimator(name, settings, device, budget, log)
        except Exception as exc:
            traceback.print_exc()
            row, ladder = {"estimator": name, "on_device": f"FAILS: {exc!r}"[:160]}, None
        main_rows.append(row)
        if ladder:
            ladder_rows.append(ladder)
    comparison, ratio = [], None
    if "EquivariantAutoencoder" in names and "ConvAutoencoder" in names:
        log("EquivariantAutoencoder vs ConvAutoencoder, same widths")
        comparison, ratio = equivariant_vs_conv(settings, device, log)
    log("convergence")
    converge = convergence(settings, device, budget, log) if not only else []
    same_seed, round_trip = determinism(settings, device)
    return {
        "settings": settings,
        "main": main_rows,
        "ladder": ladder_rows,
        "comparison": comparison,
        "equivariant_ratio": ratio,
        "convergence": converge,
        "same_seed": same_seed,
        "round_trip": round_trip,
        "device": device,
    }


def report(result, path):
    settings = result["settings"]
    lines = [f"## GPU speed of the deep estimators ({result['device']})", "", machine_line(), ""]
    if not str(result["device"]).startswith("cuda"):
        lines += ["**Not a GPU run: the figures below only show that the script works.**", ""]
    lines += [
        f"Images of {settings.size}x{settings.size} (CondVAEClassifier: 5 bands). train_*: "
        "images/s of the second of two epochs (history_ 'dur'); auto_batch: what "
        f"batch_size='auto' picks for {settings.auto_images} images; best_batch: the fastest "
        "of the ladder; over_plain: estimator / hand-written loop (same module, loss, batch "
        "size, fused AdamW, data on the device); transform_*: images/s of transform on "
        f"{settings.transform_images} in-memory images.",
        "",
        markdown_table(result["main"]),
        "### Training images/s by batch size (and the loss after 2 epochs)",
        "",
        markdown_table(result["ladder"]),
    ]
    if result["comparison"]:
        lines += ["### EquivariantAutoencoder against ConvAutoencoder, same widths", "",
                  markdown_table(result["comparison"])]  # fmt: skip
    if result["convergence"]:
        lines += [
            "### Convergence at larger batches",
            "",
            f"{settings.convergence_epochs} epochs on {settings.convergence_images} images; "
            "'sqrt' scales lr by sqrt(batch / reference) as batch_size='auto' does.",
            "",
            markdown_table(result["convergence"]),
        ]
    plain = [r.get("over_plain") for r in result["main"] if r.get("over_plain") is not None]
    default = [r.get("best_over_default") for r in result["main"]]
    default = [v for v in default if v is not None]
    failures = [r["estimator"] for r in result["main"] if r.get("on_device") != "ok"]
    lines += [
        "### Goals",
        "",
        f"- every estimator >= {GOAL_PLAIN} of its plain loop: "
        + (_goal(min(plain), GOAL_PLAIN) if plain else "not measured"),
        f"- default within {GOAL_DEFAULT}x of the best batch size: "
        + (_goal(max(default), GOAL_DEFAULT, higher=False) if default else "not measured"),
        f"- EquivariantAutoencoder transform >= {GOAL_EQUIVARIANT:.2f} of ConvAutoencoder's: "
        + _goal(result["equivariant_ratio"], GOAL_EQUIVARIANT),
        "- every estimator fits, transforms, reconstructs/denoises and scores on the device: "
        + ("met" if not failures else f"MISSED ({', '.join(failures)})"),
        f"- same random_state, same output on the device: max |dZ| = {result['same_seed']:.3g}; "
        f"pickle round trip: max |dZ| = {result['round_trip']:.3g}",
        "",
    ]
    text = "\n".join(lines)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    print(text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny networks and data")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds for the run")
    parser.add_argument("--only", nargs="*", help="estimators to measure (default: all)")
    parser.add_argument("--out", help="markdown file (default: results/gpu.md)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU here; run with --device cpu --quick for a smoke test")
        return 0
    start = time.perf_counter()
    result = run(args.quick, args.device, args.budget, args.only)
    report(result, args.out or RESULTS_DIR / "gpu.md")
    print(f"bench_gpu: {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
