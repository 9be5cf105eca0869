"""A stimulus called ``NA`` (or ``null``) in events.tsv stays a name; only ``n/a`` is missing."""

from __future__ import annotations

import pandas as pd

from facebrain.brain._bids import check_events


def test_na_stimulus_ids_in_events_tsv_stay_strings(tmp_path):
    path = tmp_path / "sub-01_task-faces_run-1_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tstimulus_id\n"
                    "0.0\t1.0\tface\tNA\n"
                    "4.0\t1.0\tface\tnull\n"
                    "8.0\t1.0\tfixation\tn/a\n"
                    "12.0\t1.0\tface\tNone\n")
    ev = check_events(path)
    sid = ev["stimulus_id"].tolist()
    assert sid[0] == "NA" and sid[1] == "null" and sid[3] == "None"
    assert pd.isna(sid[2])  # BIDS's own missing marker
    assert ev["onset"].tolist() == [0.0, 4.0, 8.0, 12.0]
