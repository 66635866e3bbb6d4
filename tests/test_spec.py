import pytest

from aiinfra_pipelines.spec import SpecError, load_spec, parse_spec


def test_examples_validate(examples_dir):
    for name in ("lifecycle.yaml", "training.yaml", "inference.yaml"):
        spec = load_spec(examples_dir / name)
        assert spec.name
    spec = load_spec(examples_dir / "lifecycle.yaml")
    assert spec.has_training and spec.has_inference
    assert spec.traffic.trace.endswith("AzureLLMInferenceTrace_conv.csv")


def test_bad_spec_names_each_field():
    bad = {
        "name": "Bad Name",
        "model": {"name": "m", "hidden_units": [0]},
        "training": {"epochs": 0},
        "scaling": {"min_replicas": 5, "max_replicas": 2},
        "colour": "blue",
    }
    with pytest.raises(SpecError) as exc:
        parse_spec(bad, source="bad.yaml")
    text = str(exc.value)
    for field in ("name", "model.hidden_units", "training.epochs", "scaling", "colour: unknown field"):
        assert field in text, text
    assert "bad.yaml" in text


def test_missing_trace_and_yaml_errors(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: x\nmodel: {name: m}\ninference: {}\ntraffic: {trace: nope.csv}\n")
    with pytest.raises(SpecError, match="traffic.trace: file not found"):
        load_spec(p)
    p.write_text("name: x\nmodel: [unclosed\n")
    with pytest.raises(SpecError, match=r"line \d+, column"):
        load_spec(p)


def test_needs_a_part():
    with pytest.raises(SpecError, match="needs a 'training' or an 'inference'"):
        parse_spec({"name": "x", "model": {"name": "m"}})
