import pytest

from whoosh.domain.labels.required import (
    REQUIRED_LABELS,
    LabelsConfigError,
    LabelSpec,
    normalize_color,
    required_labels,
)


def test_the_nine_required_labels() -> None:
    assert [s.name for s in REQUIRED_LABELS] == [
        "bug",
        "bzzz-task",
        "chorus-entrypoint",
        "duplicate",
        "enhancement",
        "help wanted",
        "invalid",
        "question",
        "wontfix",
    ]
    entry = next(s for s in REQUIRED_LABELS if s.name == "chorus-entrypoint")
    assert entry.color == "#ff6b6b"
    assert "council" in entry.description
    assert all(s.description for s in REQUIRED_LABELS)


@pytest.mark.parametrize("raw", ["FF6B6B", "#ff6b6b", " #Ff6B6b "])
def test_colours_normalise(raw: str) -> None:
    assert normalize_color(raw) == "#ff6b6b"
    assert LabelSpec(name="x", color=raw).color == "#ff6b6b"


def test_extra_labels_are_appended() -> None:
    labels = required_labels(
        '[{"name": "triage", "color": "FBCA04", "description": "Needs a look"}]'
    )
    assert len(labels) == 10
    assert labels[-1] == LabelSpec(name="triage", color="#fbca04", description="Needs a look")
    assert required_labels("") == REQUIRED_LABELS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x"}', "must be a JSON list"),
        ('[{"name": "x", "color": "red"}]', "item 1: color"),
        ('[{"color": "#ffffff"}]', "item 1: name"),
        ('[{"name": " ", "color": "#ffffff"}]', "label name is empty"),
        ('[{"name": "Chorus-Entrypoint", "color": "#000000"}]', "already in the required set"),
        ('[{"name": "a", "color": "#000000"}, {"name": "A", "color": "#000000"}]', "already"),
    ],
)
def test_invalid_extra_labels_give_a_clear_error(raw: str, expected: str) -> None:
    with pytest.raises(LabelsConfigError, match="WHOOSH_LABELS_EXTRA") as info:
        required_labels(raw)
    assert expected in str(info.value)
