"""Generate a tiny motivation zoo from the command line (used by the kill-and-resume test).

    python tests/zoo_job.py <zoo_dir> <data_dir> <executor>
"""
import os
import sys

if __name__ == "__main__":
    os.environ["PROBEX_DATA"] = sys.argv[2]
    from probex_lib import motivation, profiles

    cfg = profiles.get_config("motivation", "smoke", {"models_t1": 10, "models_other_trees": 2, "models_forest": 4})
    motivation.build_populations(cfg, sys.argv[1], executor=sys.argv[3], n_workers=1)
