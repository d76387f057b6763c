"""``--stretch``: fit records it, embed and explore apply it, resume and overrides are checked."""

import json

import numpy as np
import pytest

from skastro import ImageScaler
from skastro.cli import main
from skastro.commands._preprocessing import PREPROCESSING_FILE, read_stretch, stretch_images
from skastro.serialization import load

TINY = ["--param", "widths=[4]", "--param", "n_components=2", "--param", "random_state=0"]


@pytest.fixture(scope="module")
def stretched(tmp_path_factory):
    """Counts in a .npy file and a model fitted on them with --stretch asinh."""
    root = tmp_path_factory.mktemp("stretch")
    rng = np.random.default_rng(0)
    images = (1000 * rng.gamma(1.0, size=(24, 1, 12, 12))).astype(np.float32)
    data = root / "images.npy"
    np.save(data, images)
    model = root / "model"
    status = main(["fit", "convautoencoder", str(data), "--out", str(model), "--epochs", "1",
                   "--quiet", "--stretch", "asinh", *TINY])  # fmt: skip
    assert status == 0
    return {"root": root, "data": data, "images": images, "model": model}


def test_fit_records_the_stretch_in_the_model_folder(stretched):
    record = json.loads((stretched["model"] / PREPROCESSING_FILE).read_text())
    assert record["scaler"]["class"] == "ImageScaler"
    assert record["scaler"]["params"]["stretch"] == "asinh"
    assert read_stretch(stretched["model"]) == "asinh"


def test_embed_applies_the_saved_stretch_and_none_turns_it_off(stretched, capsys):
    out = stretched["root"] / "z.npz"
    assert main(["embed", str(stretched["model"]), str(stretched["data"]), "--out", str(out)]) == 0
    model = load(stretched["model"])
    expected = model.transform(ImageScaler(stretch="asinh").fit_transform(stretched["images"]))
    with np.load(out) as saved:
        np.testing.assert_allclose(saved["embeddings"], expected, rtol=1e-5, atol=1e-5)

    raw = stretched["root"] / "raw.npz"
    capsys.readouterr()
    status = main(["embed", str(stretched["model"]), str(stretched["data"]), "--out", str(raw),
                   "--stretch", "none"])  # fmt: skip
    assert status == 0
    assert "fitted with --stretch asinh" in capsys.readouterr().err  # the mismatch is noted
    with np.load(raw) as saved:
        np.testing.assert_allclose(
            saved["embeddings"], model.transform(stretched["images"]), rtol=1e-5, atol=1e-5
        )


def test_resume_with_another_stretch_is_refused(stretched, capsys):
    status = main(["fit", "convautoencoder", str(stretched["data"]), "--out",
                   str(stretched["model"]), "--resume", "--epochs", "2", "--stretch", "sqrt",
                   *TINY])  # fmt: skip
    assert status != 0
    err = capsys.readouterr().err
    assert "--stretch asinh, not sqrt" in err
    assert read_stretch(stretched["model"]) == "asinh"  # the model folder is unchanged


def test_a_new_fit_without_stretch_removes_the_old_record(stretched, tmp_path):
    model = tmp_path / "model"
    args = ["fit", "convautoencoder", str(stretched["data"]), "--out", str(model), "--epochs",
            "1", "--quiet", *TINY]  # fmt: skip
    assert main([*args, "--stretch", "asinh"]) == 0
    assert (model / PREPROCESSING_FILE).is_file()
    assert main([*args, "--overwrite"]) == 0
    assert not (model / PREPROCESSING_FILE).exists()
    assert read_stretch(model) is None


def test_stretch_images_is_lazy_for_lazy_inputs_and_exact_for_arrays(tmp_path):
    images = np.random.default_rng(1).gamma(1.0, size=(5, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(
        stretch_images(images, "asinh"), ImageScaler(stretch="asinh").fit_transform(images)
    )
    path = tmp_path / "x.npy"
    np.save(path, images)
    lazy = stretch_images(np.load(path, mmap_mode="r"), "asinh")
    assert not isinstance(lazy, np.ndarray)  # scaled as it is read
    np.testing.assert_allclose(np.asarray(lazy[1:3]), stretch_images(images, "asinh")[1:3])
