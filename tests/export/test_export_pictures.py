"""Every export folder has a picture: with Graphviz' ``dot`` missing from PATH, the export
draws ``architecture.png`` and ``.svg`` with matplotlib; a drawing failure costs the picture,
never the export."""

import json
import os
import shutil

import pytest

from nascell import diagram
from nascell.pictures import figures
from nascell.spec import FIGURE5_SPEC


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None and diagram.dot_binary() is None


def _is_real_png(path):
    import matplotlib.image
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 20_000
    image = matplotlib.image.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 300
    assert image[..., :3].std() > 0.05  # drawn on, not a blank page


def test_export_without_dot_has_a_png_and_svg(tmp_path, no_dot):
    from nascell.export import export_spec
    path = export_spec(FIGURE5_SPEC, str(tmp_path / "cell"), units=4, input_dim=3)
    _is_real_png(os.path.join(path, "architecture.png"))
    with open(os.path.join(path, "architecture.svg"), encoding="utf-8") as f:
        svg = f.read()
    assert "<svg" in svg and "cell inject" in svg and "node 2 (root)" in svg
    assert os.path.exists(os.path.join(path, "architecture.dot"))  # the source is kept too
    with open(os.path.join(path, "metadata.json"), encoding="utf-8") as f:
        files = json.load(f)["files"]
    assert {"architecture.png", "architecture.svg", "architecture.dot"} <= set(files)


def test_a_drawing_failure_keeps_the_dot_and_warns(tmp_path, no_dot, monkeypatch, caplog):
    from nascell.pictures import render

    def broken(*args, **kwargs):
        (tmp_path / "architecture.png").write_bytes(b"half")  # a partial file is removed
        raise RuntimeError("no fonts")

    monkeypatch.setattr(render, "write_picture", broken)
    written = diagram.write_diagram(diagram.cell_graph(FIGURE5_SPEC), str(tmp_path),
                                    picture=figures.cell_picture(FIGURE5_SPEC))
    assert written == [str(tmp_path / "architecture.dot")]
    assert not (tmp_path / "architecture.png").exists()
    assert "no fonts" in caplog.text


def test_the_old_diagram_module_warns_and_still_works():
    import importlib
    import sys

    sys.modules.pop("nascell.export.diagram", None)
    with pytest.warns(DeprecationWarning, match="removed in nascell 0.3.0; use nascell.diagram"):
        old = importlib.import_module("nascell.export.diagram")
    assert old.write_diagram is diagram.write_diagram and old.cell_graph is diagram.cell_graph
