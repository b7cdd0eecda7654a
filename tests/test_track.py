"""The video tracker: full searches now and then, faces followed in between,
and the answers as close to a full search of every frame as planning needs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.analysis.subjects import find_subjects
from pipeline.analysis.track import FULL_EVERY, Tracker

SIZE = (480, 270)


def scene(head: Image.Image | None, left: float, top: float = 0.2, shade: int = 0) -> np.ndarray:
    """A grey 480x270 picture: a calm gradient with the head at (left, top) of it."""
    width, height = SIZE
    ramp = np.clip(np.linspace(70, 190, width) + shade, 0, 255).astype(np.uint8)
    back = Image.fromarray(np.tile(ramp, (height, 1)))
    if head is not None:
        tall = round(height * 0.45)
        face = head.convert("L").resize((round(tall * head.width / head.height), tall))
        back.paste(face, (round(left * width), round(top * height)))
    return np.asarray(back)


@pytest.fixture(scope="module")
def head(astronaut: Image.Image) -> Image.Image:
    return astronaut.crop((120, 10, 340, 330))


def centre(found) -> tuple[float, float]:
    (face,) = [s for s in found if s.kind == "face"]
    return face.centre


def test_a_moving_face_is_followed_with_one_full_search_a_second(head):
    frames = [scene(head, 0.05 + 0.6 * n / 39) for n in range(40)]     # 8 s at 5 Hz
    tracker = Tracker()
    tracked = [tracker(f) for f in frames]
    searched = [find_subjects(f) for f in frames]
    for n, (mine, full) in enumerate(zip(tracked, searched, strict=True)):
        assert [s.kind for s in mine] == ["face"], n
        (x, y), (fx, fy) = centre(mine), centre(full)
        assert abs(x - fx) < 0.03 and abs(y - fy) < 0.03, (n, mine, full)
    assert tracker.full == len(frames) // FULL_EVERY


def test_a_cut_is_searched_in_full_at_once(head):
    frames = [scene(head, 0.3)] * 3 + [scene(None, 0, shade=-60)] * 3
    tracker = Tracker()
    tracked = [tracker(f) for f in frames]
    assert [s.kind for s in tracked[2]] == ["face"]
    assert tracked[3] == find_subjects(frames[3]) and tracked[3][0].kind == "salient"
    assert tracker.full == 2


def test_a_face_that_leaves_is_not_held_on_to(head):
    """The face goes but the picture hardly changes: following fails, a full
    search follows on that very frame."""
    frames = [scene(head, 0.3)] * 2 + [scene(None, 0)] * 2
    tracker = Tracker()
    tracked = [tracker(f) for f in frames]
    assert all(s.kind != "face" for s in tracked[2]), tracked[2]
    assert tracker.full == 2


def test_a_face_that_arrives_is_found_at_the_next_full_search(head):
    frames = [scene(None, 0)] * 2 + [scene(head, 0.4)] * (FULL_EVERY + 1)
    tracker = Tracker()
    tracked = [tracker(f) for f in frames]
    faces = [any(s.kind == "face" for s in sample) for sample in tracked]
    assert faces[FULL_EVERY:] == [True] * (len(frames) - FULL_EVERY)
    assert True in faces[:FULL_EVERY + 1]
