import pytest

from probex_lib import profiles


def test_every_profile_defines_every_section():
    for section in profiles.sections():
        for prof in profiles.PROFILES:
            assert profiles.get_config(section, prof) is not None


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(profiles.ProfileError, match=r"unknown profile 'fast'; valid profiles: \['smoke', 'default', 'paper', 'scaling'\]"):
        profiles.get_config("motivation", "fast")
    with pytest.raises(profiles.ProfileError, match="valid sections"):
        profiles.get_config("nope", "smoke")


def test_overrides_by_name_nested_and_typed():
    cfg = profiles.get_config("motivation", "smoke", {"models_t1": 7, "lr": 1, "data": {"n_train": 11}, "size_grid": [2, 3]}, seed=5)
    assert (cfg.models_t1, cfg.lr, cfg.data.n_train, cfg.size_grid, cfg.seed) == (7, 1.0, 11, (2, 3), 5)
    assert isinstance(cfg.lr, float)
    with pytest.raises(profiles.ProfileError, match=r"unknown override\(s\) \['model_t1'\].*valid names: .*'models_t1'"):
        profiles.get_config("motivation", "smoke", {"model_t1": 7})
    with pytest.raises(profiles.ProfileError, match=r"unknown override\(s\) \['n_trainn'\] for motivation.data"):
        profiles.get_config("motivation", "smoke", {"data": {"n_trainn": 1}})
    with pytest.raises(profiles.ProfileError, match="wrong type; expected int"):
        profiles.get_config("motivation", "smoke", {"models_t1": "many"})


def test_profiles_differ_only_in_numbers_and_sources():
    smoke, default, paper = (profiles.get_config("motivation", p) for p in ("smoke", "default", "paper"))
    assert type(smoke) is type(default) is type(paper)
    assert smoke.models_t1 < default.models_t1 < paper.models_t1
    assert paper.data.source == "cifar100" and default.data.source == "procedural"


def test_settings_hash_tracks_every_field():
    a = profiles.get_config("motivation", "smoke")
    b = profiles.get_config("motivation", "smoke", {"data": {"seed": 1}})
    assert profiles.settings_hash(a) == profiles.settings_hash(profiles.get_config("motivation", "smoke"))
    assert profiles.settings_hash(a) != profiles.settings_hash(b)
