"""`simulator plot` draws a single run's folder as well as a sweep's."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from simulator.cli import main
from simulator.collect import write_run
from simulator.config import ParameterError
from simulator.registry import get_model
from simulator.sweep.plot import plot_folder, plot_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    m = get_model("social_learning")(rng=0, n_agents=10, agent_every=2, measures="fast")
    m.run_for(4)
    write_run(m, out, "social_learning", 4)
    return out


def test_plot_draws_a_runs_measures_and_agents(run_dir):
    import matplotlib.image as mpimg

    paths = plot_run(run_dir)
    assert [p.name for p in paths] == ["measures.png", "agents.png"]
    for path in paths:
        image = mpimg.imread(path)
        assert image.shape[0] > 200 and image.std() > 0.01  # a real figure, not blank


def test_plot_command_accepts_a_run_folder(run_dir, tmp_path):
    result = CliRunner().invoke(main, ["plot", str(run_dir), "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert "measures.png" in result.output and (tmp_path / "f" / "agents.png").exists()
    one = CliRunner().invoke(
        main, ["plot", str(run_dir), "--measure", "probe_loss", "--out", str(tmp_path / "g")]
    )
    assert one.exit_code == 0, one.output


def test_plot_names_a_bad_folder_or_measure(run_dir, tmp_path):
    with pytest.raises(ParameterError, match="neither a sweep folder"):
        plot_folder(tmp_path)
    with pytest.raises(ParameterError, match="measures"):
        plot_run(run_dir, ["not_a_measure"])
    (tmp_path / "model.csv").write_text("garbage\x00,\n")
    with pytest.raises(ParameterError, match="no step column|cannot read"):
        plot_run(tmp_path)
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "..")])
    assert result.exit_code != 0 and "Traceback" not in result.output
