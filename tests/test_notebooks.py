"""Every numbered notebook runs top to bottom in the smoke profile and writes its figures and claims."""
import json

import pytest

from probex_lib import claims, runner

EXPECTED = {
    "01_motivation_tree_vs_forest": ["fig3a_tree_vs_forest", "fig3b_positive_transfer", "fig3c_negative_transfer",
                                     "fig3d_moe_vs_shared", "fig3_layer_sweep"],
    "02_modelj_generation": ["fig17_21_accuracy_histograms", "fig22_24_accuracy_vs_lr", "fig16_generative_layout",
                             "modelj_lora_samples_fine", "modelj_lora_samples_low", "modelj_personalisation",
                             "table9_modelj_summary"],
}


@pytest.mark.slow
@pytest.mark.parametrize("notebook", runner.discover(), ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(notebook, kit_dirs):
    _, figures = kit_dirs
    runner.run_notebook(notebook, {"profile": "smoke", "out_dir": str(figures), "n_workers": 2}, figures)
    for name in EXPECTED.get(notebook.stem, []):
        for ext in ("png", "pdf") if not name.startswith("table") else ():
            assert (figures / f"{name}.{ext}").stat().st_size > 1000, f"{name}.{ext} missing or empty"
        if not name.startswith(("fig3_layer", "modelj_lora_samples", "fig22")):
            assert (figures / f"{name}.csv").exists() and (figures / f"{name}.md").exists()
    record = figures / "claims" / f"{notebook.stem.split('_')[0]}_{notebook.stem.split('_')[1]}.json"
    df = claims.read_claims(record)
    assert len(df) >= 1 and set(df["verdict"]) <= set(claims.VERDICTS)
    assert json.loads(record.read_text())["profile"] == "smoke"
