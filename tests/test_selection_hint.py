"""The selection as a hint on the shared job path (bgmask.host.job), as both plug-ins use it:
the box in the layer's own pixels, the message for a selection that misses the layer, and
what mask_layers sends the worker."""

from __future__ import annotations

import pytest
from bgmask.host.client import MaskReply
from bgmask.host.errors import UsageError
from bgmask.host.job import JobSettings, LayerInput, mask_layers, selection_box


@pytest.mark.parametrize("bounds, box", [
    ((2, 1, 5, 3), (2, 1, 3, 2)),  # inside the layer
    ((-10, -5, 3, 2), (0, 0, 3, 2)),  # from above-left of the layer
    ((8, 4, 50, 50), (8, 4, 2, 2)),  # past its bottom-right corner
    ((-1, -1, 11, 7), (0, 0, 10, 6)),  # all of it
])
def test_the_box_is_the_selections_bounds_clipped_to_the_layer(bounds, box):
    assert selection_box("photo", *bounds, 10, 6) == box


@pytest.mark.parametrize("bounds", [(10, 0, 12, 6), (0, 6, 10, 9), (-5, -5, 0, 3),
                                    (3, 3, 3, 5)])
def test_a_selection_that_misses_the_layer_says_what_to_do(bounds):
    with pytest.raises(UsageError, match="The selection does not touch layer 'photo'"):
        selection_box("photo", *bounds, 10, 6)


class Client:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def mask(self, pixels, width, height, fmt, *, model, options=None, progress=None,
             base_mask=None, base_masks=(), mask_size=None, colours=False) -> MaskReply:
        self.sent.append({"options": options, "base_mask": base_mask,
                          "base_masks": list(base_masks), "colours": colours})
        return MaskReply(bytes(width * height), width, height, "CPUExecutionProvider", None)


def layer(box=None, selection=None, base_mask=None) -> LayerInput:
    return LayerInput("photo", bytes(4 * 3 * 3), 4, 3, "rgb8", base_mask, box, selection)


def send(settings: JobSettings, *layers: LayerInput) -> list[dict]:
    client = Client()
    mask_layers(client, len(layers), layers.__getitem__, settings,  # type: ignore[arg-type]
                lambda fraction, text: None)
    return client.sent


def test_mask_layers_sends_the_box_and_the_selection_beside_an_existing_mask():
    selection, existing = bytes([0, 9, 200, 0] * 3), bytes(range(12))
    sent = send(JobSettings(), layer((1, 0, 2, 3), selection, existing), layer())[0:2]
    assert sent[0]["options"]["box"] == [1, 0, 2, 3]
    assert sent[0]["base_masks"] == [selection] and sent[0]["base_mask"] == existing
    assert "box" not in sent[1]["options"] and sent[1]["base_masks"] == []
    assert not sent[0]["colours"]  # a mask never asks for cleaned colours


def test_a_full_selection_or_the_setting_off_sends_no_hint():
    part = layer((1, 0, 2, 3), bytes(12))
    everything = layer((0, 0, 4, 3), bytes([255]) * 12)
    for sent in [*send(JobSettings(use_selection=False), part), *send(JobSettings(), everything)]:
        assert "box" not in sent["options"] and sent["base_masks"] == []
    # Feathered all over: the box is the whole layer but the plane still caps the mask.
    soft = send(JobSettings(), layer((0, 0, 4, 3), bytes([128]) * 12))[0]
    assert soft["base_masks"] == [bytes([128]) * 12]


def test_the_setting_survives_saving_as_text():
    assert JobSettings.saved({"use_selection": "False"}.get).use_selection is False
    assert JobSettings.saved(lambda key, default: default).use_selection is True
