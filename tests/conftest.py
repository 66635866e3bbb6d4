"""Shared fixtures: the public data folder and an isolated state directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiinfra_pipelines.paths import shared_data_dir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.fail("the public data folder (../shared/data or AIINFRA_DATA_DIR) is missing")
    return d


@pytest.fixture
def aiinfra_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "aiinfra-home"
    monkeypatch.setenv("AIINFRA_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return REPO / "examples"


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    """A saved reference MLP (digits' 64 features, 10 classes) for the server, replica and load tests."""
    from aiinfra_pipelines.workloads.training import NumpyMLP

    path = tmp_path_factory.mktemp("model") / "model.npz"
    NumpyMLP([64, 128, 64, 10], seed=1).save(path, {"dataset": "digits"})
    return path


@pytest.fixture
def short_spec(tmp_path, shared_data) -> Path:
    """The example lifecycle spec cut short for a whole iteration in a test: two epochs and
    eight seconds of the conversation trace."""
    import yaml

    spec = yaml.safe_load((REPO / "examples" / "lifecycle.yaml").read_text())
    spec["training"]["epochs"] = 2
    spec["traffic"].update(trace=str(shared_data / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv"),
                           duration_s=8)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path
