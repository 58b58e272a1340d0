import nbformat
import pytest

from probex_lib import runner


def _nb(path, cells, tag=True):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]} if tag else {})]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_select_by_number_name_and_start(tmp_path):
    nbs = [tmp_path / f"{n}.ipynb" for n in ("01_a", "02_b", "03_c")]
    assert runner.select(nbs, ["01", "03_c"]) == [nbs[0], nbs[2]]
    assert runner.select(nbs, None, "02") == nbs[1:]
    with pytest.raises(runner.RunError, match=r"unknown notebook '09'; valid: \['01_a', '02_b', '03_c'\]"):
        runner.select(nbs, ["09"])


def test_the_kit_notebooks_all_have_parameters_cells():
    nbs = runner.discover()
    assert nbs, "no notebooks found"
    for nb in nbs:
        runner.check_parameters_cell(nb)


def test_missing_parameters_cell_and_failing_cell_are_reported(tmp_path):
    with pytest.raises(runner.RunError, match="no code cell tagged 'parameters'"):
        runner.run_notebook(_nb(tmp_path / "01_x.ipynb", ["1"], tag=False), {}, tmp_path)
    bad = _nb(tmp_path / "02_y.ipynb", ["x = 1", "raise KeyError('boom')"])
    with pytest.raises(runner.RunError, match=r"02_y.ipynb failed in cell \d+ \(KeyError: 'boom'\).*notebooks/02_y.ipynb"):
        runner.run_notebook(bad, {"profile": "smoke"}, tmp_path / "out")
    assert (tmp_path / "out" / "notebooks" / "02_y.ipynb").exists()


def test_unknown_profile_is_refused(capsys):
    with pytest.raises(SystemExit):
        runner.main(["--profile", "huge"])
    assert "valid profiles" in capsys.readouterr().err


def test_papermill_sees_every_parameter_of_every_notebook():
    import papermill as pm

    for nb in runner.discover():
        cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
        declared = {line.split(":")[0].split("=")[0].strip() for line in cell.source.splitlines() if line and line[0].isalpha()}
        params = pm.inspect_notebook(str(nb))
        assert set(params) == declared, f"{nb.name}: papermill could not parse {declared - set(params)}"
        assert {"profile", "seed", "out_dir"} <= declared
        assert all(p["inferred_type_name"] != "None" for p in params.values()), f"{nb.name}: untyped parameter"


def test_the_input_key_follows_the_modules_a_notebook_imports(tmp_path):
    lib = tmp_path / "probex_lib"
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "used.py").write_text("from . import helper\n")
    (lib / "helper.py").write_text("X = 1\n")
    (lib / "unrelated.py").write_text("Y = 1\n")
    nb = _nb(tmp_path / "01_x.ipynb", ["%matplotlib inline\nfrom probex_lib import used"])
    assert [m.name for m in runner.library_modules(nb, lib)] == ["__init__.py", "helper.py", "used.py"]
    key = runner.input_key(nb, {"profile": "smoke"}, lib)
    (lib / "unrelated.py").write_text("Y = 2\n")
    assert runner.input_key(nb, {"profile": "smoke"}, lib) == key
    (lib / "helper.py").write_text("X = 2\n")  # imported through used.py
    assert runner.input_key(nb, {"profile": "smoke"}, lib) != key
    assert runner.input_key(nb, {"profile": "default"}, lib) != runner.input_key(nb, {"profile": "smoke"}, lib)


def test_no_notebook_imports_the_orchestration():
    for nb in runner.discover():
        names = {m.stem for m in runner.library_modules(nb)}
        assert not names & {"runner", "report"}, nb.name
