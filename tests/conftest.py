import numpy as np
import pytest

from aml import TwoLayerNet

# The handout's toy problem: np.random.seed(0) for the model, np.random.seed(1) for the data.
TOY_PROBS = np.array([[0.36446210, 0.22911264, 0.40642526], [0.47590629, 0.17217039, 0.35192332],
                      [0.43035767, 0.26164229, 0.30800004], [0.41583127, 0.29832280, 0.28584593],
                      [0.36328815, 0.32279939, 0.31391246]])
TOY_LOSS_REG_005 = 1.30378789133


@pytest.fixture
def toy_net():
    np.random.seed(0)
    return TwoLayerNet(4, 10, 3, std=1e-1)


@pytest.fixture
def toy_data():
    np.random.seed(1)
    X = 10 * np.random.randn(5, 4)
    y = np.array([0, 1, 2, 2, 1])
    return X, y


# Shared by the data-loader tests (tests/test_data.py, tests/test_data_security.py), which use them
# through ``pytestmark = pytest.mark.usefixtures("isolated_data_dir")`` and by name.
@pytest.fixture
def tmp_dir(tmp_path):
    """pytest's tmp_path with its symlinks resolved, as aml.data.data_root() resolves them (macOS: /tmp ->
    /private/tmp), so that the paths in the expected messages are the ones the loader prints."""
    return tmp_path.resolve()


@pytest.fixture
def isolated_data_dir(tmp_path_factory, monkeypatch):
    """An empty AML_DATA_DIR of its own for each test (the tests that need another set it themselves): code
    that loses its root argument must not find, or write into, the shared data folder."""
    folder = tmp_path_factory.mktemp("default-root")
    monkeypatch.setenv("AML_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def whole():
    """whole(message): a ``pytest.raises(match=...)`` pattern that accepts ``message`` and nothing else."""
    import re

    return lambda message: f"^{re.escape(str(message))}$"
