from whoosh.domain.labels.plan import GiteaLabel, plan_repo
from whoosh.domain.labels.required import REQUIRED_LABELS


def existing(skip: tuple[str, ...] = ()) -> list[GiteaLabel]:
    return [
        GiteaLabel(id=i, name=s.name, color=s.color, description=s.description)
        for i, s in enumerate(REQUIRED_LABELS, start=1)
        if s.name not in skip
    ]


def test_fresh_repository_plans_all_nine() -> None:
    plan = plan_repo([], REQUIRED_LABELS, fix_drift=False)
    assert [s.name for s in plan.create] == [s.name for s in REQUIRED_LABELS]
    assert plan.present == [] and plan.update == [] and plan.drifted == []


def test_complete_repository_plans_nothing() -> None:
    plan = plan_repo(existing(), REQUIRED_LABELS, fix_drift=True)
    assert plan.create == [] and plan.update == [] and len(plan.present) == 9


def test_only_the_missing_label_is_planned() -> None:
    plan = plan_repo(existing(skip=("chorus-entrypoint",)), REQUIRED_LABELS, fix_drift=False)
    assert [s.name for s in plan.create] == ["chorus-entrypoint"]


def test_drift_is_reported_and_only_planned_when_asked() -> None:
    labels = existing()
    labels[0] = GiteaLabel(id=1, name="bug", color="#000000", description="old")
    plan = plan_repo(labels, REQUIRED_LABELS, fix_drift=False)
    assert [d.name for d in plan.drifted] == ["bug"]
    assert plan.drifted[0].current_color == "#000000"
    assert plan.drifted[0].wanted_color == "#d73a4a"
    assert plan.update == []
    fixing = plan_repo(labels, REQUIRED_LABELS, fix_drift=True)
    assert [(u.label_id, u.spec.name) for u in fixing.update] == [(1, "bug")]


def test_case_variant_counts_as_present_and_user_labels_are_ignored() -> None:
    labels = [*existing(skip=("bug",)), GiteaLabel(id=50, name="Bug", color="#d73a4a",
              description="Something isn't working"),
              GiteaLabel(id=51, name="priority/high", color="#ff0000", description="")]  # fmt: skip
    plan = plan_repo(labels, REQUIRED_LABELS, fix_drift=True)
    assert plan.create == [] and plan.update == [] and "bug" in plan.present
