"""bgmask's Krita plug-in in the real Krita GUI under Xvfb: its action and its docker button,
in every Krita of the matrix (the host's 5.1, Debian's 5.2, 5.3 and 6.0 in chroots).

One Krita run covers the scenarios (each start costs seconds); each test checks one of them.
Expected masks come from the ``bgmask --mask`` command on the same pixels.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine.decontaminate import foreground_colours
from PIL import Image

from ..conftest import assert_same_mask
from ..hint_photo import BOX, cat_alone_mask, cat_beside_astronaut, iou_with_cat
from ..photos import CUP
from .krita_host import SUITES, KritaHost, KritaRun, copy_profile, require_krita
from .test_gimp import assert_close, cli_mask

pytestmark = pytest.mark.editors
HERE = Path(__file__).resolve().parent
DRIVER = HERE / "krita_e2e_driver.py"
SCENARIOS = ["action", "docker", "hint", "RGBAU16", "CMYKAU8", "offset", "two_layers", "existing",
             "two_documents", "killed_worker", "big_layer"]


@pytest.fixture(scope="module", params=SUITES)
def krita_host(request) -> KritaHost:
    return require_krita(request.param)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("krita-photo") / "photo.png"
    Image.open(CUP).convert("RGB").save(path)
    return path


@pytest.fixture(scope="module")
def expected(photo, tmp_path_factory) -> np.ndarray:
    return cli_mask(photo, tmp_path_factory.mktemp("krita-expected"))


def krita(host: KritaHost, tmp: Path, photo: Path, model_dir: Path, scenarios: list[str],
          python: str | None = None, timeout: float = 400, **job: object) -> KritaRun:
    """``scenarios`` in ``host``'s Krita; the worker is this test's Python on the host, the
    chroot's own Python environment in a chroot, or ``python``."""
    if python is None and not host.chroot:
        python = sys.executable
    return host.run(tmp, DRIVER, {"photo": str(photo), "scenarios": scenarios, **job},
                    env={"BGMASK_PYTHON": python} if python else {}, timeout=timeout,
                    model_dir=model_dir)


def checked(run: KritaRun) -> dict:
    found = run.results()
    assert "exception" not in found, found["exception"]
    for name, result in found.items():
        assert "exception" not in result, f"scenario {name} raised in Krita:\n{result}"
    return found


@pytest.fixture(scope="module")
def camera_results(krita_host, photo, camera, model_dir, tmp_path_factory) -> dict:
    """Camera-size photos in a Krita run of their own (three 12 MP documents take minutes on
    two busy cores)."""
    run = krita(krita_host, tmp_path_factory.mktemp("krita-camera"), photo, model_dir,
                ["camera"], timeout=900,
                camera={name: str(p.path) for name, p in camera.items()})
    return checked(run)["camera"]


@pytest.fixture(scope="module")
def clean_results(krita_host, photo, camera, model_dir, tmp_path_factory) -> dict:
    """The new-layer output with clean edge colours, in a Krita run of its own: a 12 MP JPEG
    (8-bit), a 12 MP 16-bit PNG, and the small photo as a float document."""
    cases = [{"name": "jpeg", "path": str(camera["jpeg"].path), "files": True},
             {"name": "png16", "path": str(camera["png16"].path), "files": True},
             {"name": "float", "space": ["RGBA", "F32", "sRGB-elle-V2-g10.icc"]}]
    run = krita(krita_host, tmp_path_factory.mktemp("krita-clean"), photo, model_dir,
                ["decontaminate"], timeout=900, decontaminate=cases)
    return checked(run)["decontaminate"]


@pytest.fixture(scope="module")
def results(krita_host, photo, hint_photo, model_dir, tmp_path_factory) -> dict:
    return checked(krita(krita_host, tmp_path_factory.mktemp("krita"), photo, model_dir,
                         SCENARIOS, hint_photo=str(hint_photo), hint_box=list(BOX)))


@pytest.fixture(scope="module")
def hint_photo(tmp_path_factory) -> Path:
    return cat_beside_astronaut(tmp_path_factory.mktemp("krita-hint"))


def mask_of(info: dict) -> np.ndarray:
    data = Path(info["file"]).read_bytes()
    return np.frombuffer(data, np.uint8).reshape(info["height"], info["width"])


def test_action_adds_the_cli_mask_keeps_pixels_and_one_undo_removes_it(results, expected):
    action = results["action"]
    assert action["ok"], action["message"]
    assert action["ui_free_while_running"], "the action blocked Krita until the mask was done"
    assert action["mask"] is not None and action["mask"]["count"] == 1
    assert_close(mask_of(action["mask"]), expected)
    assert action["pixels_unchanged"]
    assert action["masks_after_one_undo"] == 0
    assert action["provider"] == "CPUExecutionProvider"


def test_a_selection_points_at_the_subject_the_network_missed(results, hint_photo, masker,
                                                              tmp_path):
    """The cat beside the astronaut: selected around, Krita's mask is the core's ``--box``
    mask for the same pixels, 0 outside the selection, and it finds the cat."""
    hint = results["hint"]
    assert hint["ok"], hint["message"]
    assert hint["pixels_unchanged"]
    got = mask_of(hint["mask"])
    boxed = cli_mask(hint_photo, tmp_path, "--box", ",".join(map(str, BOX)))
    assert_same_mask(got, boxed)
    x, y, w, h = BOX
    outside = np.ones(got.shape, bool)
    outside[y:y + h, x:x + w] = False
    assert got[outside].max() == 0
    assert iou_with_cat(got, cat_alone_mask(masker)) > 0.9


def test_docker_button_adds_the_mask_and_reports_in_its_status_line(results, expected):
    docker = results["docker"]
    assert docker["ok"], docker["message"]
    assert docker["button_disabled_while_running"]
    assert_close(mask_of(docker["mask"]), expected)
    assert "done: 1 layer" in docker["status"] and "CPU" in docker["status"]


def test_sixteen_bit_document(results, expected):
    u16 = results["RGBAU16"]
    assert u16["ok"], u16["message"]
    assert u16["space"] == ["RGBA", "U16"] and u16["space_unchanged"]
    assert u16["pixels_unchanged"]
    # 8-bit sRGB -> 16-bit linear -> 8-bit sRGB (on a copy) is exact up to rounding.
    assert_close(mask_of(u16["mask"]), expected, levels=2)


def test_cmyk_document(results, expected):
    cmyk = results["CMYKAU8"]
    assert cmyk["ok"], cmyk["message"]
    assert cmyk["space"] == ["CMYKA", "U8"] and cmyk["space_unchanged"]
    assert cmyk["pixels_unchanged"]
    got = mask_of(cmyk["mask"])
    # CMYK's gamut changes the colours the network sees: the same subject, not the same bytes.
    iou = ((got > 127) & (expected > 127)).sum() / max(((got > 127) | (expected > 127)).sum(), 1)
    assert iou > 0.9, iou


def test_offset_layer_gets_its_mask_at_its_own_position(results, expected):
    offset = results["offset"]
    assert offset["ok"], offset["message"]
    assert (offset["mask"]["x"], offset["mask"]["y"]) == (40, 25)
    assert_close(mask_of(offset["mask"]), expected)


def test_two_selected_layers_both_get_masks(results, expected):
    two = results["two_layers"]
    assert two["ok"], two["message"]
    assert_close(mask_of(two["first"]), expected)
    assert_close(mask_of(two["second"]), expected)


def test_existing_mask_is_intersected(results, expected):
    got = mask_of(results["intersect"]["mask"])
    assert results["intersect"]["mask"]["count"] == 1
    half = got.shape[1] // 2
    assert not got[:, :half].any()
    assert_close(got[:, half:], expected[:, half:])


def test_two_documents_at_once_both_get_masks(results, expected):
    both = results["two_documents"]
    assert both["ok"], both["message"]
    assert both["busy_after_first"]
    assert both["targets"] == ["first document", "second document"]
    assert_close(mask_of(both["first"]), expected)
    assert_close(mask_of(both["second"]), expected)


def test_worker_killed_mid_job_leaves_the_document_and_the_next_click_works(results):
    killed = results["killed_worker"]
    # Without this, a worker killed while its request is written ends Krita (SIGPIPE).
    assert results["action"]["sigpipe_ignored"]
    assert killed["killed"], "the test found no worker to kill"
    assert not killed["first"]["ok"] and "worker" in killed["first"]["message"]
    assert killed["first"]["unchanged"]
    assert killed["second"]["ok"], killed["second"]["message"]
    assert killed["second"]["masks"] == 1


def test_big_layer_gets_the_cores_mask_of_its_own_pixels(results, masker):
    big = results["big_layer"]
    assert big["ok"], big["message"]
    info = big["mask"]
    assert max(info["width"], info["height"]) > 1024
    got = mask_of(info)
    bgra = np.frombuffer(Path(big["pixels"]).read_bytes(), np.uint8).reshape(
        info["height"], info["width"], 4)
    want = masker.mask(np.ascontiguousarray(bgra[:, :, [2, 1, 0]]))
    assert_same_mask(got, want, mean_levels=0.1)


def krita_pixels(result: dict) -> np.ndarray:
    """The RGB pixels Krita holds for a layer (its pixelData is B,G,R,A; 16-bit: native)."""
    info = result["mask"]
    dtype = np.uint16 if result["depth"] == "U16" else np.uint8
    bgra = np.fromfile(result["pixels"], dtype).reshape(info["height"], info["width"], 4)
    return np.ascontiguousarray(bgra[:, :, [2, 1, 0]])


def test_camera_size_photos_get_the_cores_mask(camera_results, camera, masker):
    """A 12 MP JPEG, a 12 MP PNG with alpha and a 12 MP 16-bit PNG opened in Krita: the
    transparency mask is the one the core computes for the pixels Krita holds (over the
    layer's bounds: Krita leaves fully transparent pixels out of a layer)."""
    for name, photo in camera.items():
        result = camera_results[name]
        assert result["ok"], f"{name}: {result['message']}"
        assert result["pixels_unchanged"], name
        assert result["mask"]["count"] == 1, name
        assert result["masks_after_one_undo"] == 0, name
        held = krita_pixels(result)
        if name != "png_alpha":
            assert held.shape[:2] == photo.pixels.shape[:2], name
        try:
            assert_same_mask(mask_of(result["mask"]), masker.mask(held))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None
    assert camera_results["png16"]["depth"] == "U16"


def held_pixels(path: str, info: dict) -> np.ndarray:
    """A layer's pixels as Krita holds them: (H, W, 4) B,G,R,A, 16-bit native-endian."""
    dtype = np.uint16 if info["depth"] == "U16" else np.uint8
    return np.fromfile(path, dtype).reshape(info["height"], info["width"], 4)


def test_new_layer_gets_the_cores_clean_edge_colours(clean_results, krita_host):
    """Output "New layer" with "Clean edge colours": the new layer's pixels are what the core
    computes for the pixels Krita holds and the mask written (8- and 16-bit, 12 MP), its
    soft edge really changed, the user's layer untouched; one undo removes the new layer
    (Krita 5.1, whose mask comes from its own action: two, the mask then the layer)."""
    assert clean_results["checkbox"] == {"enabled_for_mask": False, "enabled_for_layer": True}
    assert clean_results["saved"] == "True"  # the docker's choice, for the action too
    for name in ("jpeg", "png16"):
        result = clean_results[name]
        assert result["ok"], f"{name}: {result['message']}"
        assert "not cleaned" not in result["message"], name
        assert result["pixels_unchanged"] and result["masks_on_layer"] == 0, name
        assert result["copies"] == 1 and result["copy_masks"] == 1, name
        held = held_pixels(result["pixels"], result)
        copy = held_pixels(result["copy"]["pixels"], result)
        mask = mask_of(result["mask"])
        want = foreground_colours(held[:, :, :3], mask)
        level = 257 if result["depth"] == "U16" else 1
        diff = np.abs(copy[:, :, :3].astype(np.int64) - want)
        assert diff.max() <= level, f"{name}: {diff.max() / level:.1f} levels off the core's"
        assert np.array_equal(copy[:, :, 3], held[:, :, 3]), name
        band = (mask > 0) & (mask < 255)
        assert band.sum() > 10_000, f"{name}: no soft edge to clean"
        assert np.array_equal(copy[~band], held[~band]), name
        moved = np.abs(copy[band][:, :3].astype(np.int64) - held[band][:, :3]).mean() / level
        assert moved > 1, f"{name}: the edge colours moved {moved:.2f} levels on average"
        if krita_host.suite == "host":
            assert result["copy_masks_after_one_undo"] == [0], f"{name}: {result}"
            assert result["copies_after_two_undos"] == 0, f"{name}: {result}"
        else:
            assert result["copies_after_one_undo"] == 0, f"{name}: {result}"
    assert clean_results["png16"]["depth"] == "U16"


def test_a_float_layer_keeps_its_edge_colours_and_says_why(clean_results):
    """A float layer goes to the worker as an 8-bit sRGB copy: its cleaned colours would be
    wrong in the layer's own space, so the new layer keeps the layer's pixels, with a note."""
    result = clean_results["float"]
    assert result["ok"], result["message"]
    assert result["depth"] == "F32"
    assert "edge colours not cleaned on" in result["message"] and "F32" in result["message"]
    assert result["copies"] == 1 and result["copy_masks"] == 1
    assert result["copy_equals_layer"] and result["pixels_unchanged"]


def test_a_profile_holding_sockets_copies(tmp_path):
    """Krita leaves its single-instance socket in a profile it quit through os._exit: the
    next test run's copy of that profile must not fail on it."""
    import socket

    source = tmp_path / "template"
    (source / "tmp").mkdir(parents=True)
    (source / "config").mkdir()
    (source / "config" / "kritarc").write_text("[General]\n")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(source / "tmp" / "qtsingleapplication-1234"))
    os.mkfifo(source / "tmp" / "fifo")
    copy_profile(source, tmp_path / "copy")
    server.close()
    assert (tmp_path / "copy" / "config" / "kritarc").read_text() == "[General]\n"
    assert not (tmp_path / "copy" / "tmp" / "qtsingleapplication-1234").exists()


def test_missing_worker_leaves_the_document_unchanged_with_a_clear_error(krita_host, photo,
                                                                          model_dir, tmp_path):
    run = krita(krita_host, tmp_path, photo, model_dir, ["failure"],
                python="/nonexistent/python3")
    failure = run.results()["failure"]
    assert not failure["ok"]
    assert failure["unchanged"]
    assert "does not exist" in failure["message"] and "installer" in failure["message"]
    assert failure["message_box"] == failure["message"]
