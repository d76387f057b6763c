"""skastro._escnn: escnn without lie_learn under numpy 2, and a clear error without escnn."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from skastro import _escnn

# Run in a fresh interpreter in which `import escnn` fails as if it were not installed.
_WITHOUT_ESCNN = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoEscnn(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "escnn" or name.startswith("escnn."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoEscnn())
    import importlib.util
    importlib.util.find_spec = lambda name, *a, _f=importlib.util.find_spec: (
        None if name == "escnn" else _f(name, *a))
    import numpy as np
    from sklearn.base import clone
    from skastro import EquivariantAutoencoder

    ae = clone(EquivariantAutoencoder(n_components=2, widths=(4,), max_epochs=1))
    try:
        ae.fit(np.zeros((4, 1, 8, 8), dtype=np.float32))
    except ImportError as exc:
        print("IMPORT-ERROR:", exc)
    print("FITTED:", hasattr(ae, "net_"))
    """
)


def test_missing_escnn_is_an_import_error_with_the_install_command():
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_ESCNN], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # the class imports and clones without escnn; fitting names the exact command
    assert "IMPORT-ERROR:" in result.stdout
    assert _escnn.INSTALL_COMMAND in result.stdout
    assert "FITTED: False" in result.stdout


def test_wigner_d_stand_in_or_the_real_lie_learn():
    wigner = sys.modules["lie_learn.representations.SO3.wigner_d"]
    if not getattr(wigner, "_skastro_stand_in", False):
        assert np.__version__ < "2", "the real lie_learn cannot run under numpy 2"
        pytest.skip("the real lie_learn is installed here (numpy 1)")
    assert _escnn.lie_learn_stand_in() is True  # idempotent
    # only escnn's 3-D groups call it; the error says so and what to do
    with pytest.raises(ImportError, match="planar groups"):
        wigner.wigner_D_matrix(1, 0.0, 0.0, 0.0)


def test_three_d_groups_fail_clearly_while_planar_groups_build():
    from skastro._escnn import gspaces

    assert gspaces.flipRot2dOnR2(8).fibergroup.order() == 16
    if getattr(sys.modules["lie_learn.representations.SO3.wigner_d"], "_skastro_stand_in", 0):
        with pytest.raises(ImportError, match="lie_learn"):
            gspaces.rot3dOnR3().fibergroup.irrep(1)(gspaces.rot3dOnR3().fibergroup.sample())
