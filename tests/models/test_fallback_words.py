"""A risk from the anomaly score alone (no failure model to use) says so in a technician's words: the
readings' distance from the type's usual ones on the scale of 0 to 1 the cold start uses, never "fallback"."""

from __future__ import annotations

import copy

from models.fleet_model import FALLBACK
from tests.models.fleet_support import pump_model, pump_panel


def test_a_risk_without_a_failure_model_says_it_comes_from_the_readings_alone() -> None:
    broken = copy.deepcopy(pump_model())
    broken.classifier_.models_ = [object()]  # predict_proba missing: the classifier raises
    out = broken.predict_frame(pump_panel())
    rows = out[out["status"] == FALLBACK]

    assert len(rows) > 0
    for _, row in rows.iterrows():
        said = (
            f"risk {row['risk'] * 100:.0f} % from its readings alone, no failure model to use: "
            f"readings {row['anomaly_score']:.2f} of 1 unlike its machine type's usual ones "
            "(anomaly score; 0: as usual)"
        )
        assert row["explanation"].startswith(said), row["explanation"]
        assert "fallback" not in row["explanation"]
