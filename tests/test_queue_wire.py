"""The queue's settings, its messages and what a hostile Redis could send back:
no Redis needed here (tests/test_queue.py runs the real thing)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("celery", reason="needs the queue extra: repurpose[queue]")

from pipeline.errors import Problem, ShootError, WriteError  # noqa: E402
from pipeline.ffmpeg import FfmpegError  # noqa: E402
from pipeline.model import Check, JobResult, VariantResult  # noqa: E402
from pipeline.queue.app import HARD_CAP_S, VISIBILITY_S, settings, time_limits  # noqa: E402
from pipeline.queue.wire import PathMap, job_result, master_key, result  # noqa: E402


def test_settings_for_long_renders():
    conf = settings("redis://127.0.0.1:6379/0")
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["accept_content"] == ["json"] == conf["result_accept_content"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["broker_transport_options"]["visibility_timeout"] == VISIBILITY_S == \
        conf["result_backend_transport_options"]["visibility_timeout"] == \
        conf["visibility_timeout"]
    assert conf["worker_max_tasks_per_child"] and conf["worker_max_memory_per_child"]
    assert conf["task_routes"]["repurpose.speech"] == {"queue": "speech"}


def test_time_limits_follow_the_master_and_stay_inside_the_visibility_timeout():
    assert time_limits(None) == (570, 600)                  # a photo
    assert time_limits(60) == (4170, 4200)                  # a minute of video
    soft, hard = time_limits(10 * 3600)                     # ten hours of it
    assert hard == HARD_CAP_S < VISIBILITY_S and soft < hard


def test_results_travel_with_their_kinds():
    made = VariantResult("a.jpg", "x-image", "x-image/a.jpg", "rendered", width=1200,
                         warnings=("w",), checks=(Check("width", True, "1200", "1200"),))
    errors = [WriteError("disk full", path="a.jpg"),
              ShootError([Problem("shoot.yaml", 2, "targets", "unknown")], path="b.jpg"),
              FfmpegError("bad", argv=["ffmpeg", "-i", "x"], stderr_tail="oops", path="c")]
    back = job_result(result(JobResult([made], errors)))
    assert back.results == [made]
    assert [type(e) for e in back.errors] == [WriteError, ShootError, FfmpegError]
    assert [str(e) for e in back.errors] == [str(e) for e in errors]
    assert back.errors[1].problems == errors[1].problems          # type: ignore[attr-defined]
    assert back.errors[2].argv == ["ffmpeg", "-i", "x"]            # type: ignore[attr-defined]


@pytest.mark.parametrize("answer", [None, [], {"v": 99}, {"v": 1, "results": "x"},
                                    {"v": 1, "results": [{"nope": 1}], "errors": []}])
def test_an_answer_that_is_not_one_is_refused(answer):
    with pytest.raises((ValueError, KeyError, TypeError)):
        job_result(answer)


def test_path_map():
    where = PathMap(["/Volumes/Studio=/mnt/studio", "/Volumes/Studio/raw=/srv/raw"])
    assert where("/Volumes/Studio/a/b.jpg") == Path("/mnt/studio/a/b.jpg")
    assert where("/Volumes/Studio/raw/c.mov") == Path("/srv/raw/c.mov")     # longest wins
    assert where("/Volumes/Studio2/d.jpg") == Path("/Volumes/Studio2/d.jpg")
    for bad in ("relative=/x", "/x", "/x=relative"):
        with pytest.raises(ValueError, match="FROM=TO"):
            PathMap([bad])


def test_one_master_into_one_folder_is_one_lock():
    body = {"out": "/o", "stem": "a", "label": "a.jpg", "force": True}
    assert master_key(body) == master_key({**body, "force": False})
    assert master_key(body) != master_key({**body, "out": "/p"})


@pytest.mark.parametrize("entry", ["../../etc/cron.d/x", "/tmp/x.json", "a" * 64 + ".json",
                                   "0" * 64 + ".speech-v1-" + "0" * 16 + ".json/../x",
                                   "0" * 64 + ".speech-v1-" + "0" * 16 + ".json"])
def test_a_transcript_from_redis_is_kept_only_under_this_masters_name(tmp_path, monkeypatch,
                                                                      astronaut, entry):
    """A speech answer comes through Redis: only a transcript named for this master
    and these speech settings, with cues of the right shape, reaches the cache."""
    from pipeline.outputs import sha256_file
    from pipeline.queue.tasks import _remember
    from pipeline.runner import plan_jobs
    from pipeline.schema import SpeechOptions
    from pipeline.speech.providers import transcript_entry

    monkeypatch.setenv("REPURPOSE_CACHE", str(tmp_path / "cache"))
    master = tmp_path / "a.jpg"
    astronaut.save(master)
    (job,) = plan_jobs([master], tmp_path / "out", (), ["x-image"]).jobs
    cue = [0, 1000, "x", [[0, 500, "x"]]]
    _remember({"v": 1, "entry": entry, "cues": [cue]}, job)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    good = transcript_entry(SpeechOptions(), sha256_file(master))
    _remember({"v": 1, "entry": good, "cues": [[0, 1, 2, 3]]}, job)      # not cues
    assert not (tmp_path / "cache" / good).exists()
    _remember({"v": 1, "entry": good, "cues": [cue]}, job)
    assert (tmp_path / "cache" / good).is_file()


def test_a_path_map_from_the_root():
    assert PathMap(["/=/mnt/root"])("/home/x/a.jpg") == Path("/mnt/root/home/x/a.jpg")


def test_a_forged_error_without_its_problems_still_reads():
    from pipeline.errors import ConfigError

    (error,) = job_result({"v": 1, "results": [], "errors": [
        {"kind": "ConfigError", "message": "bad", "path": "a", "preset": None,
         "hint": None}]}).errors
    assert isinstance(error, ConfigError) and "bad" in str(error)
    with pytest.raises(ValueError):
        job_result({"v": 1, "results": [{"source": "a", "preset": None, "path": "p",
                                          "status": "rendered"}], "errors": []})


@pytest.mark.parametrize("broker", ["memory://", "bogus://x", "file:///etc/passwd",
                                    "redis://h:abc/0", "redis://:secret@h:x/0"])
def test_a_broker_that_is_no_redis_url_is_one_line(broker):
    from pipeline.queue.remote import BrokerUnreachable, connect

    with pytest.raises(BrokerUnreachable, match="must be a Redis URL") as caught:
        connect(broker)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("stem", ["../../escape", "a/b", "..", ""])
def test_a_forged_output_name_is_refused_before_anything_is_written(tmp_path, astronaut, stem):
    from pipeline.errors import InputError
    from pipeline.queue.tasks import _job

    master = tmp_path / "a.jpg"
    astronaut.save(master)
    body = {"v": 1, "path": str(master), "label": "a.jpg", "stem": stem, "options_key": "a.jpg",
            "shoot_dir": None, "out": str(tmp_path / "out"), "presets_dirs": [],
            "only": ["x-image"], "force": False, "force_captions": False, "trusted": False}
    with pytest.raises(InputError, match="not a file name"):
        _job(body)
