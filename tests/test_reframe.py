"""Subject-aware framing: plan tests on synthetic detections, and real
detections on scikit-image's astronaut composited into wide pictures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.analysis.subjects import Subject, detector, find_subjects
from pipeline.planning import Choices, plan_photo
from pipeline.planning.reframe import needed, subject_window
from pipeline.presets import load_catalog

CATALOG = load_catalog()


def face(cx: float, cy: float, size: float = 0.1, aspect: float = 16 / 9) -> Subject:
    """A face box centred at (cx, cy), `size` of the frame's height tall."""
    w = size / aspect
    return Subject.of(cx - w / 2, cy - size / 2, cx + w / 2, cy + size / 2, "face")


def inside(outer, inner) -> bool:
    return (outer.left <= inner.left + 1e-6 and outer.top <= inner.top + 1e-6
            and inner.right <= outer.right + 1e-6 and inner.bottom <= outer.bottom + 1e-6)


def info(width: int, height: int):
    from pipeline.model import PhotoInfo

    return PhotoInfo("JPEG", width, height, width, height, 1, "RGB", 8, False, None)


@pytest.mark.parametrize("cx", [0.05, 0.3, 0.5, 0.8, 0.97])
@pytest.mark.parametrize("target", [9 / 16, 4 / 5, 1.0])
def test_a_face_anywhere_stays_whole_with_room(cx, target):
    subject = face(cx, 0.4)
    window = subject_window(1920, 1080, target, [subject])
    assert window is not None and window.framing == "1 face"
    assert inside(window.box, needed([subject], 1920, 1080))
    assert window.box.width / window.box.height == pytest.approx(target, rel=1e-3)


def test_portrait_puts_the_eyes_near_the_upper_third():
    subject = face(0.5, 0.5, size=0.1, aspect=1.0)
    window = subject_window(2000, 8000, 9 / 16, [subject])   # tall master: room to move
    eyes = (subject.top + 0.4 * subject.height) * 8000
    assert (eyes - window.box.top) / window.box.height == pytest.approx(1 / 3, abs=0.01)


def test_faces_that_cannot_fit_fall_back_to_blur_pad_and_say_so():
    two = [face(0.06, 0.4), face(0.94, 0.4)]
    assert subject_window(1920, 1080, 9 / 16, two) is None
    plan = plan_photo(info(1920, 1080), CATALOG.get("instagram-story-image"), Choices(),
                      source="m.jpg", stem="m", source_digest="d", subjects=two)
    assert plan.fit == "blur-pad" and plan.crop.width == 1920
    assert any("2 faces cannot all fit" in w for w in plan.warnings)
    crop_anyway = CATALOG.get("instagram-story-image").model_copy(
        update={"reframe_fallback": "crop"})
    bigger = [face(0.06, 0.4, size=0.2), face(0.94, 0.4)]
    kept = plan_photo(info(1920, 1080), crop_anyway, Choices(), source="m.jpg", stem="m",
                      source_digest="d", subjects=bigger)
    assert kept.fit == "crop" and inside(kept.crop, needed(bigger[:1], 1920, 1080))


def test_two_faces_that_fit_are_both_kept():
    two = [face(0.35, 0.4), face(0.6, 0.45)]
    window = subject_window(1920, 1080, 1.0, two)
    assert window is not None and window.framing == "2 faces"
    assert inside(window.box, needed(two, 1920, 1080))


def test_focus_from_the_shoot_wins_over_faces():
    plan = plan_photo(info(1920, 1080), CATALOG.get("instagram-story-image"),
                      Choices(focus=(0.1, 0.5)), source="m.jpg", stem="m",
                      source_digest="d", subjects=[face(0.9, 0.4)])
    assert plan.crop.left == 0 and plan.framing == "focus from shoot.yaml"


def test_without_faces_the_salient_region_is_centred():
    salient = Subject.of(0.7, 0.3, 0.9, 0.6, "salient", 0.6)
    window = subject_window(1920, 1080, 9 / 16, [salient])
    assert window is not None and window.framing == "the most salient region"
    centre = (window.box.left + window.box.right) / 2 / 1920
    assert centre == pytest.approx(0.8, abs=0.01)


def composite(astronaut: Image.Image, places: list[tuple[int, int, int]],
              size=(1920, 1080)) -> Image.Image:
    """Head-and-shoulders crops of the astronaut pasted at (x, y, height) onto a calm
    gradient background."""
    ramp = np.linspace(60, 200, size[0], dtype=np.uint8)
    picture = Image.fromarray(np.dstack([np.tile(ramp, (size[1], 1))] * 3))
    head = astronaut.crop((120, 10, 340, 330))
    for x, y, h in places:
        picture.paste(head.resize((round(h * 220 / 320), h)), (x, y))
    return picture


def test_detectors_find_the_astronaut_face_and_a_salient_thing(astronaut):
    picture = composite(astronaut, [(1300, 300, 480)])
    grey = np.asarray(picture.convert("L").resize((1024, 576)))
    (found,) = find_subjects(grey)
    assert found.kind == "face"
    # The face sits in the pasted head's upper part: x 1300-1630, y 300-780 of 1920x1080.
    cx, cy = found.centre
    assert 1300 < cx * 1920 < 1630 and 300 < cy * 1080 < 600
    plain = np.asarray(composite(astronaut, []).convert("L").resize((1024, 576))).copy()
    plain[200:300, 700:800] = 255                   # one bright square on the gradient
    (salient,) = detector("saliency")(plain)
    assert salient.kind == "salient"
    sx, sy = salient.centre
    assert 700 < sx * 1024 < 800 and 200 < sy * 576 < 300


def test_reframed_photo_keeps_the_face_a_centre_crop_loses(tmp_path, astronaut):
    from pipeline.runner import run

    found = {}
    centre = "sources:\n  wide.jpg:\n    focus: [0.5, 0.5]\n"
    for name, shoot in (("ours", None), ("centre", centre)):
        folder = tmp_path / name
        folder.mkdir()
        composite(astronaut, [(1500, 250, 480)]).save(folder / "wide.jpg", quality=92)
        if shoot:
            (folder / "shoot.yaml").write_text(shoot)
        report = run([folder], tmp_path / f"out-{name}", (), ["instagram-story-image"], jobs=1)
        (result,) = report.results
        assert result.status == "rendered"
        made = np.asarray(Image.open(tmp_path / f"out-{name}" / result.path).convert("L"))
        found[name] = (result.plan["framing"], detector("faces")(made))
    framing, faces = found["ours"]
    assert framing == "1 face" and len(faces) == 1
    assert 0 < faces[0].left and faces[0].right < 1          # whole, with room beside it
    assert found["centre"] == ("focus from shoot.yaml", [])  # the centre crop loses her


def test_a_photo_is_decoded_once_for_its_analysis_and_all_its_variants(tmp_path, astronaut,
                                                                       monkeypatch):
    """The analysis takes its picture from the render's own decode; a second render
    finds the subjects cached and still decodes once."""
    import pipeline.render.jobs as jobs
    from pipeline.analysis.photo import cached_subjects
    from pipeline.outputs import sha256_file
    from pipeline.runner import run

    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    decodes = []
    real = jobs.decode

    def counted(image, info, scales, label):
        decodes.append(max(scales))
        return real(image, info, scales, label)

    monkeypatch.setattr(jobs, "decode", counted)
    master = tmp_path / "in" / "wide.jpg"
    master.parent.mkdir()
    composite(astronaut, [(1500, 250, 480)]).save(master, quality=92)
    assert cached_subjects(sha256_file(master)) is None
    presets = ["instagram-story-image", "instagram-feed-portrait", "x-image"]
    for round_ in (1, 2):
        report = run([master], tmp_path / "out", (), presets, jobs=1, force=True)
        assert [r.status for r in report.results] == ["rendered"] * 3, report.errors
        assert {r.plan["framing"] for r in report.results if r.preset != "x-image"} == \
            {"1 face"}
        assert len(decodes) == round_
    (face,) = cached_subjects(sha256_file(master))
    assert face.kind == "face" and 1500 / 1920 < face.centre[0] < 1830 / 1920
