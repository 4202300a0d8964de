"""Files the user owns (issue 13): bgmask writes only its own outputs, never through a link
another user planted, never over an input (by any name or mount), never over a file it did not
write in an output folder unless told to, leaves no temporaries when stopped, and trusts no
incomplete file for --skip-existing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from bgmask.engine.output import is_complete_output
from bgmask.engine.safewrite import write_file
from bgmask.host.errors import OutputError
from PIL import Image

from .conftest import SAMPLE, bgmask_cli, interruptible

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, unshare)")


def bgmask(*args: object, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, *bgmask_cli(), *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def photo(path: Path, size: int = 96) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(SAMPLE).convert("RGB").resize((size, size)).save(path)
    return path


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A private file of the victim's (the user running bgmask)."""
    home = tmp_path / "victim-home"
    home.mkdir(mode=0o700)
    path = home / "secret.txt"
    path.write_text("the victim's own words\n")
    path.chmod(0o600)
    return path


def assert_untouched(secret: Path) -> None:
    assert secret.read_bytes() == b"the victim's own words\n", "the victim's file was written"
    assert secret.stat().st_mode & 0o777 == 0o600


# -- links planted by another local user -------------------------------------------------------

@ROOT_ONLY
def test_planted_temporary_names_are_never_written_through(model_dir, second_user,
                                                           shared_folder, secret, tmp_path):
    """The old temporary name was .NAME.PID.tmp: another user planted it as a link to the
    victim's file for every PID bgmask could get (here a fresh PID namespace makes that a
    handful), and the victim's file was overwritten."""
    for pid in range(1, 64):
        planted = second_user.run("ln", "-s", str(secret),
                                  str(shared_folder / f".cut.png.{pid}.tmp"))
        assert planted.returncode == 0, planted.stderr
    out = shared_folder / "cut.png"
    result = bgmask(photo(tmp_path / "in.png"), "-o", out, prefix=("unshare", "--pid", "--fork"))
    assert result.returncode == 0, result.stderr
    assert_untouched(secret)
    assert not out.is_symlink() and Image.open(out).mode == "RGBA"
    leftovers = [p.name for p in shared_folder.iterdir()
                 if not p.is_symlink() and p.name != "cut.png"]
    assert leftovers == []


@ROOT_ONLY
def test_a_planted_link_at_the_output_name_is_replaced_not_followed(model_dir, second_user,
                                                                    shared_folder, secret,
                                                                    tmp_path):
    out = shared_folder / "cut.png"
    assert second_user.run("ln", "-s", str(secret), str(out)).returncode == 0
    result = bgmask(photo(tmp_path / "in.png"), "-o", out)
    assert result.returncode == 0, result.stderr
    assert_untouched(secret)
    assert not out.is_symlink() and Image.open(out).mode == "RGBA"


@ROOT_ONLY
def test_a_link_in_an_output_folder_is_refused_then_replaced_only_with_overwrite(
        model_dir, second_user, shared_folder, secret, tmp_path):
    photo(tmp_path / "in" / "a.png")
    planted = shared_folder / "a.png"
    assert second_user.run("ln", "-s", str(secret), str(planted)).returncode == 0
    refused = bgmask(tmp_path / "in", "-o", shared_folder, "--mask")
    assert refused.returncode == 1 and "already exists" in refused.stderr
    assert planted.is_symlink()
    replaced = bgmask(tmp_path / "in", "-o", shared_folder, "--mask", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert_untouched(secret)
    assert not planted.is_symlink() and Image.open(planted).mode == "L"


@ROOT_ONLY
def test_a_planted_sub_folder_link_is_not_entered(model_dir, second_user, shared_folder,
                                                  secret, tmp_path):
    """A recursive run writes sub/c.png: a 'sub' link to a folder of the victim's must not
    take the write there."""
    photo(tmp_path / "in" / "a.png")
    photo(tmp_path / "in" / "sub" / "c.png")
    assert second_user.run("ln", "-s", str(secret.parent), str(shared_folder / "sub")
                           ).returncode == 0
    result = bgmask(tmp_path / "in", "-r", "-o", shared_folder, "--mask")
    assert result.returncode == 1
    assert f"{shared_folder / 'sub'} is a link" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in secret.parent.iterdir()) == ["secret.txt"]
    assert (shared_folder / "a.png").is_file()
    assert "1 written, 0 skipped, 1 failed" in result.stderr


def test_an_output_appearing_meanwhile_is_not_replaced(tmp_path):
    """The check before work can be overtaken: the final step itself refuses to replace."""
    target = tmp_path / "a.png"
    target.write_bytes(b"the user's own")
    dangling = tmp_path / "b.png"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (target, dangling):
        with pytest.raises(OutputError, match="already exists"):
            write_file(path, lambda f: f.write(b"bgmask's"), replace=False)
    assert target.read_bytes() == b"the user's own" and dangling.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


# -- inputs are never overwritten ------------------------------------------------------------

@ROOT_ONLY
def test_an_input_reached_through_a_bind_mount_is_never_overwritten(model_dir, tmp_path):
    source = photo(tmp_path / "in" / "photo.png")
    before = source.read_bytes()
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "--bind", str(source.parent), str(mount)], check=True)
    try:
        single = bgmask(source, "-o", mount / "photo.png")
        folder = bgmask(source.parent, "-o", mount, "--overwrite")
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    for result in (single, folder):
        assert result.returncode == 2 and "never overwrites an input" in result.stderr
    assert source.read_bytes() == before


def test_an_input_under_another_name_is_never_overwritten(model_dir, tmp_path):
    source = photo(tmp_path / "in" / "photo.png")
    before = source.read_bytes()
    (tmp_path / "out").mkdir()
    os.link(source, tmp_path / "out" / "photo.png")
    (tmp_path / "out" / "link.png").symlink_to(source)
    for target in ("photo.png", "link.png"):
        result = bgmask(source, "-o", tmp_path / "out" / target)
        assert result.returncode == 2 and "never overwrites an input" in result.stderr
    assert source.read_bytes() == before


# -- the user's own files in an output folder ------------------------------------------------

def test_a_folder_run_never_replaces_a_file_it_did_not_write(model_dir, tmp_path):
    photo(tmp_path / "in" / "a.jpg")
    photo(tmp_path / "in" / "b.png")
    out = tmp_path / "out"
    out.mkdir()
    own = out / "a.png"
    Image.new("RGB", (5, 5), "red").save(own)
    before = own.read_bytes()
    result = bgmask(tmp_path / "in", "-o", out, "--mask")
    assert result.returncode == 1
    [line] = [x for x in result.stderr.splitlines() if str(own) in x]
    assert "already exists" in line and "--overwrite" in line and "--skip-existing" in line
    assert own.read_bytes() == before
    assert Image.open(out / "b.png").size == (96, 96)  # the rest were done
    replaced = bgmask(tmp_path / "in", "-o", out, "--mask", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert Image.open(own).size == (96, 96)


def test_a_file_named_with_o_is_replaced(model_dir, tmp_path):
    out = tmp_path / "cut.png"
    Image.new("RGB", (5, 5), "red").save(out)
    assert bgmask(photo(tmp_path / "in.png"), "-o", out, "--mask").returncode == 0
    assert Image.open(out).size == (96, 96)


def test_two_inputs_for_one_output_name_stop_before_any_work(tmp_path):
    photo(tmp_path / "in" / "a.jpg")
    photo(tmp_path / "in" / "a.png")
    result = bgmask(tmp_path / "in", "-o", tmp_path / "out")
    assert result.returncode == 2 and "two inputs would both be written to" in result.stderr
    assert not (tmp_path / "out").exists()


def test_overwrite_and_skip_existing_together_are_a_usage_error(tmp_path):
    result = bgmask(SAMPLE, "-o", tmp_path / "out", "--overwrite", "--skip-existing")
    assert result.returncode == 2 and "contradict" in result.stderr


def test_skip_existing_trusts_only_complete_outputs(model_dir, tmp_path):
    for name in ("a", "b", "c", "d"):
        photo(tmp_path / "in" / f"{name}.png")
    out = tmp_path / "out"
    assert bgmask(tmp_path / "in", "-o", out, "--mask").returncode == 0
    complete = (out / "d.png").read_bytes()
    (out / "a.png").write_bytes(b"")  # 0 bytes
    (out / "b.png").write_bytes(complete[: len(complete) // 2])  # cut short
    Image.new("L", (7, 7)).save(out / "c.png")  # complete, but not this input's size
    result = bgmask(tmp_path / "in", "-o", out, "--mask", "--skip-existing")
    assert result.returncode == 0, result.stderr
    assert f"{out / 'd.png'}: skipped, already there" in result.stdout
    for name in ("a", "b", "c"):
        assert f"{out / name}.png (replaced an incomplete or different file)" in result.stdout
        assert is_complete_output(out / f"{name}.png", (96, 96))
    assert "3 written, 1 skipped, 0 failed" in result.stderr


# -- stopping a folder run -------------------------------------------------------------------

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_folder_run_leaves_no_temporaries(model_dir, tmp_path, signum):
    """The signal is sent while an output is being written (a temporary exists): the run
    stops at once, removes it, and every file left is complete."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    big = Image.open(SAMPLE).convert("RGB").resize((2000, 2000))
    noise = rng.integers(0, 40, (2000, 2000, 3), dtype=np.uint8)
    big = Image.fromarray(np.asarray(big) | noise)  # slow to compress: a long write
    for i in range(8):
        big.save(inputs / f"p{i}.png", compress_level=1)
    out = tmp_path / "out"
    process = subprocess.Popen([*bgmask_cli(), str(inputs), "-o", str(out), "--jobs", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and any(p.name.endswith(".tmp") for p in out.iterdir()):
            break
        time.sleep(0.002)
    else:
        process.kill()
        pytest.fail("no temporary was ever seen")
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 15, "it went on with the queue"
    assert process.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert "Traceback" not in stderr
    left = sorted(p.name for p in out.iterdir())
    assert not [name for name in left if name.startswith(".")], left
    assert len(left) < 8
    for name in left:
        assert is_complete_output(out / name, (2000, 2000)), name
