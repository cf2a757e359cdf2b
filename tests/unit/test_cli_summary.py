"""The run summary's own pieces: the stage-time table and the champion line."""

from __future__ import annotations

from nnpipe.artifacts import PromotedSpec, RegistrationRecord
from nnpipe.cli.summary import stage_time_lines
from nnpipe.registration_summary import champion_text, deployed_lines


def test_the_time_table_has_a_row_per_stage_and_says_which_were_current():
    results = {
        "xray": {"ingest": {"skipped": True}, "train": {"seconds": 83.4}},
        "ohlcv": {"ingest": {"seconds": 0.42}},
    }
    lines = stage_time_lines(results, {"xray": 100.2, "ohlcv": 3.0})
    assert lines[0].split() == ["stage", "xray", "ohlcv"]
    assert lines[1].split() == ["ingest", "current", "0.4", "s"]
    assert lines[2].split() == ["train", "83", "s", "-"]
    assert lines[3].split() == ["whole", "flow", "100", "s", "3.0", "s"]
    assert len({len(line.rstrip()) for line in lines}) == 1  # columns line up


def test_no_champion_is_said_plainly_never_as_vnone():
    assert champion_text("3") == "champion is v3"
    assert "None" not in champion_text(None)
    record = RegistrationRecord(
        registered=True,
        model_name="m",
        version="1",
        aliases=["challenger"],
        promoted=False,
        champion_now=None,
        reason="refused",
        run_id="r1",
    )
    lines = deployed_lines(record, deployed("tflite_dynamic", "smallest"))
    assert not any("vNone" in line for line in lines)
    refused = RegistrationRecord(
        registered=False,
        model_name="m",
        version=None,
        aliases=[],
        promoted=False,
        reason="nothing registered",
        champion_now=None,
        run_id="r1",
    )
    assert not any("vNone" in line for line in deployed_lines(refused, deployed(None, "none")))


def deployed(variant: str | None, reason: str) -> PromotedSpec:
    """A deploy.json record, as far as the summary reads it."""
    return PromotedSpec(
        domain="xray",
        variant=variant,
        file=None,
        format=None,
        sha256=None,
        run_id="r1",
        metric="roc_auc",
        parity="decision_agreement",
        reason=reason,
        verdicts={},
        reference_file=None,
        measured=None,
        reference=None,
    )
