"""The evidence threshold is chosen on one half of the cases and reported on the other."""

from __future__ import annotations

from eval.calibrate_evidence import calibrate


def row(case_id: str, half: int, answerable: bool, evidence: float) -> dict[str, object]:
    return {"id": case_id, "half": half, "answerable": answerable, "confidence": evidence, "evidence": evidence}


def test_the_threshold_tuned_on_one_half_is_scored_on_the_other() -> None:
    rows = [
        row("a", 0, True, 0.8),
        row("b", 0, False, 0.3),
        row("c", 1, True, 0.45),  # answerable, but below what half 0 learned
        row("d", 1, False, 0.2),
    ]

    result = calibrate(rows)

    tuned_on_0 = result["halves"][0]
    assert 0.3 < tuned_on_0["threshold"] <= 0.8
    assert tuned_on_0["tuned"] == {"false_abstention": 0.0, "correct_abstention": 1.0}
    expected_false = 1.0 if tuned_on_0["threshold"] > 0.45 else 0.0
    assert tuned_on_0["checked"]["false_abstention"] == expected_false
    assert tuned_on_0["checked"]["correct_abstention"] == 1.0
