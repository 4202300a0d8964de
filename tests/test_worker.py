"""A real worker process driven through the stdlib client, as the editors will drive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from bgmask.host.channels import worker_command
from bgmask.host.client import WorkerClient
from bgmask.host.errors import UnknownModelError, UsageError, WorkerError
from bgmask.host.protocol import read_frame, write_frame
from PIL import Image


def test_handshake_reports_versions(worker_client):
    import bgmask

    worker_client.start()
    assert worker_client.worker_version == bgmask.__version__
    assert "CPUExecutionProvider" in worker_client.providers


def test_mask_equals_the_core_for_the_same_pixels(worker_client, masker, sample_rgba):
    stages = []
    reply = worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8",
                        progress=lambda stage, done, total: stages.append(stage))
    assert reply.provider == "CPUExecutionProvider"
    got = np.frombuffer(reply.mask, np.uint8).reshape(512, 512)
    assert np.array_equal(got, masker.mask(sample_rgba))
    assert "inference" in stages


def test_base_mask_is_intersected_with_the_new_mask(worker_client, masker, sample_rgba):
    # An existing layer mask: the left half painted out by hand.
    base = np.full((512, 512), 255, np.uint8)
    base[:, :256] = 0
    reply = worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", base_mask=base.tobytes())
    got = np.frombuffer(reply.mask, np.uint8).reshape(512, 512)
    expected = masker.mask(sample_rgba)
    assert not got[:, :256].any()
    assert np.array_equal(got[:, 256:], expected[:, 256:])
    assert expected[:, :256].any()  # the subject does reach into the painted-out half


def test_a_box_and_two_base_planes_as_an_editors_selection_sends_them(worker_client, masker,
                                                                       sample_rgba):
    """A selection: its bounding box as "box", its soft values and an existing mask as two
    base planes. The reply is the core's --box mask, never above either plane."""
    from bgmask.engine.pipeline import MaskOptions

    box = (180, 60, 200, 300)
    selection = np.zeros((512, 512), np.uint8)
    selection[60:360, 180:380] = 160  # a feathered selection at 160 of 255
    selection[60:360, 180:280] = 255
    existing = np.full((512, 512), 255, np.uint8)
    existing[:200] = 90
    reply = worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", options={"box": list(box)},
                        base_mask=existing.tobytes(), base_masks=[selection.tobytes()])
    got = np.frombuffer(reply.mask, np.uint8).reshape(512, 512)
    core = masker.mask(sample_rgba, MaskOptions(box=box))
    assert np.array_equal(got, np.minimum(np.minimum(core, selection), existing))
    assert (got[60:360, 180:280] > 200).mean() > 0.3 and got[selection == 0].max() == 0


@pytest.mark.parametrize("box, message", [
    ([0, 0, 513, 10], "reaches outside the 512x512"), ([1, 2, 3], "four whole numbers"),
    ([0, 0, 0, 5], "is empty"), ([-1, 0, 5, 5], "starts outside"),
    ("0,0,5,5", "wrong type"), ([0, 0, 5.5, 5], "four whole numbers")])
def test_a_bad_box_is_a_usage_error_and_the_worker_keeps_serving(worker_client, sample_rgba, box,
                                                                  message):
    with pytest.raises(UsageError, match=message):
        worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", options={"box": box})
    assert len(worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8").mask) == 512 * 512


def test_bgra_pixels_as_krita_keeps_them(worker_client, sample_rgba):
    rgba = worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8").mask
    bgra = worker_client.mask(sample_rgba[:, :, [2, 1, 0, 3]].tobytes(), 512, 512, "bgra8").mask
    swapped = sample_rgba[:, :, [2, 1, 0, 3]].tobytes()
    swapped_wrongly = worker_client.mask(swapped, 512, 512, "rgba8").mask
    assert bgra == rgba
    assert swapped_wrongly != rgba


def test_sixteen_bit_and_float_pixels(worker_client, sample_rgba):
    rgb16 = (sample_rgba[:, :, :3].astype("<u2") * 257).tobytes()
    grayf = (sample_rgba[:, :, 0].astype("<f4") / 255).tobytes()
    a = worker_client.mask(rgb16, 512, 512, "rgb16").mask
    b = worker_client.mask(grayf, 512, 512, "grayf32").mask
    assert len(a) == len(b) == 512 * 512


def test_errors_are_replies_and_the_worker_keeps_serving(worker_client, sample_rgba):
    with pytest.raises(UnknownModelError):
        worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", model="nope")
    with pytest.raises(UsageError, match="threshold"):
        worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", options={"threshold": 7})
    with pytest.raises(UsageError, match="unknown option"):
        worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8", options={"colour": 1})
    pid = worker_client.worker_pid
    assert worker_client.mask(sample_rgba.tobytes(), 512, 512, "rgba8").width == 512
    assert worker_client.worker_pid == pid


def test_client_refuses_a_wrong_pixel_count_before_sending(worker_client):
    with pytest.raises(WorkerError, match="needs 12 bytes"):
        worker_client.mask(b"\0" * 5, 2, 2, "rgb8")


def test_raw_protocol_errors_keep_the_worker_alive(model_dir):
    proc = subprocess.Popen(worker_command(sys.executable), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    try:
        write_frame(proc.stdin, {"type": "mask", "id": 1, "width": 1, "height": 1,
                                 "format": "gray8"}, b"\0")
        assert read_frame(proc.stdout)[0]["message"].startswith("send a 'hello'")
        write_frame(proc.stdin, {"type": "hello", "protocol": 1})
        assert read_frame(proc.stdout)[0]["type"] == "hello"
        write_frame(proc.stdin, {"type": "mask", "id": 2, "width": 3, "height": 3,
                                 "format": "rgb8"}, b"\0" * 10)
        reply = read_frame(proc.stdout)[0]
        assert reply["type"] == "error" and "27 bytes" in reply["message"]
        write_frame(proc.stdin, {"type": "launch"})
        assert "unknown request" in read_frame(proc.stdout)[0]["message"]
        write_frame(proc.stdin, {"type": "mask", "id": 3, "width": 1, "height": 1,
                                 "format": "gray8"}, b"\x80")
        assert read_frame(proc.stdout)[0]["type"] in ("progress", "mask")
        proc.stdin.close()  # end-of-file: a clean exit
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_bad_magic_gets_one_error_then_the_worker_exits(model_dir):
    proc = subprocess.run(worker_command(sys.executable), input=b"GARBAGE-GARBAGE-GARBAGE",
                          capture_output=True, timeout=30)
    assert proc.returncode == 3
    assert b"magic" in proc.stdout


def test_killed_worker_is_reported_and_the_next_request_starts_a_fresh_one(model_dir, sample_rgba):
    with WorkerClient.one_shot(worker_command(sys.executable)) as c:
        c.start()
        first = c.worker_pid
        os.kill(first, signal.SIGKILL)
        time.sleep(0.2)
        with pytest.raises(WorkerError, match="stopped unexpectedly"):
            c.request({"type": "hello", "protocol": 1})
        reply = c.mask(sample_rgba.tobytes(), 512, 512, "rgba8")
        assert reply.width == 512 and c.worker_pid != first


def test_missing_worker_python_is_a_clear_error():
    with pytest.raises(WorkerError, match="BGMASK_PYTHON"):
        WorkerClient.one_shot(["/nonexistent/python3", "-m", "bgmask.worker"]).start()



def test_a_reduced_copy_gets_the_mask_at_the_layer_size(worker_client, masker, sample_rgba):
    """A client may send a copy reduced to the 1024 px working view of a big picture: the mask
    comes back at the picture's full size, as the core makes it from the full-size pixels."""
    from bgmask.engine.images import WORK_SIDE

    big = np.asarray(Image.fromarray(sample_rgba).resize((2400, 1800), Image.Resampling.LANCZOS))
    w, h = WORK_SIDE, WORK_SIDE * 3 // 4
    small = np.asarray(Image.fromarray(big).resize((w, h), Image.Resampling.BOX))
    reply = worker_client.mask(small.tobytes(), w, h, "rgba8", mask_size=(2400, 1800))
    got = np.frombuffer(reply.mask, np.uint8).reshape(1800, 2400)
    want = masker.mask(big)
    assert (reply.width, reply.height) == (2400, 1800)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2
    with pytest.raises(UsageError, match="full-size"):
        worker_client.mask(small.tobytes(), w, h, "rgba8", mask_size=(2400, 1800),
                    options={"refine": True})
