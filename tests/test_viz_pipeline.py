import pytest

from gptlab.viz import STAGES, pipeline


def test_marks_stage_by_key_and_lesson():
    assert "[TOKENS]" in repr(pipeline("tokens"))
    assert "[TOKENS]" in repr(pipeline(2))
    assert "ffb000" in pipeline(5)._repr_html_()
    assert "[" not in repr(pipeline())


def test_every_lesson_after_00_has_a_stage():
    covered = {n for _, _, lessons in STAGES for n in lessons}
    assert covered == set(range(1, 13))


def test_unknown_stage_lists_known():
    with pytest.raises(ValueError, match="Known stages"):
        pipeline("decoder")
