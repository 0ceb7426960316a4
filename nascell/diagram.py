"""An export's architecture files: ``architecture.dot``, ``.png`` and ``.svg``.

Each figure is built once, as a `nascell.pictures.Picture` (`nascell.pictures.figures`: a cell
tree like Figure 8 of Zoph & Le (2017), a conv net like Figure 7, the ENAS cells and networks).
`write_diagram` writes its Graphviz source and renders the images with Graphviz' ``dot`` where
it is installed (`nascell.pictures.dot`), and with matplotlib otherwise
(`nascell.pictures.render`), so every export folder has a picture.

`cell_graph`, `conv_graph`, `enas_rnn_graph`, `enas_conv_graph` and `enas_macro_graph` give a
figure as a ``graphviz.Digraph``; each spec kind hands out its own
(`nascell.kinds.SpecKind.diagram`, `nascell.kinds.SpecKind.picture`).
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence

import graphviz
from absl import logging

from nascell.enas_spec import ENASConvCellSpec, ENASMacroSpec, ENASRNNCellSpec
from nascell.pictures import figures
from nascell.pictures.dot import dot_binary, render_dot, to_dot
from nascell.pictures.figures import macro_layer_lines
from nascell.pictures.model import Picture
from nascell.spec import ConvSpec, RNNCellSpec

__all__ = ["cell_graph", "conv_graph", "dot_binary", "enas_conv_graph", "enas_macro_graph",
           "enas_rnn_graph", "macro_layer_lines", "to_dot", "write_diagram"]


def cell_graph(spec: RNNCellSpec, title: Optional[str] = None) -> graphviz.Digraph:
    """The cell tree of an `RNNCellSpec` (`figures.cell_picture`), as Graphviz source."""
    return to_dot(figures.cell_picture(spec, title))


def conv_graph(spec: ConvSpec, image_shape=None, output_shapes: Optional[Sequence] = None,
               features_shape=None, title: Optional[str] = None) -> graphviz.Digraph:
    """A conv spec's layers and skip connections (`figures.conv_picture`), as Graphviz source."""
    return to_dot(figures.conv_picture(spec, image_shape, output_shapes, features_shape, title))


def enas_rnn_graph(spec: ENASRNNCellSpec, title: Optional[str] = None) -> graphviz.Digraph:
    """The DAG of an `ENASRNNCellSpec` (`figures.enas_rnn_picture`), as Graphviz source."""
    return to_dot(figures.enas_rnn_picture(spec, title))


def enas_conv_graph(spec: ENASConvCellSpec, image_shape=None, features_shape=None,
                    title: Optional[str] = None) -> graphviz.Digraph:
    """The two cells of an `ENASConvCellSpec` (`figures.enas_conv_picture`), as Graphviz
    source."""
    return to_dot(figures.enas_conv_picture(spec, image_shape, features_shape, title))


def enas_macro_graph(spec: ENASMacroSpec, image_shape=None, features_shape=None,
                     title: Optional[str] = None) -> graphviz.Digraph:
    """The layers of an `ENASMacroSpec` (`figures.enas_macro_picture`), as Graphviz source."""
    return to_dot(figures.enas_macro_picture(spec, image_shape, features_shape, title))


def write_diagram(graph: Optional[graphviz.Digraph], directory: str,
                  stem: str = "architecture", formats=("png", "svg"),
                  picture: Optional[Picture] = None) -> List[str]:
    """Write ``<stem>.dot`` and ``<stem>.<fmt>``; returns the files.

    Args:
        graph: the Graphviz source; None draws it from ``picture`` (`to_dot`).
        directory: where the files go.
        stem: their name without the extension.
        formats: the image formats.
        picture: the figure, drawn with matplotlib where ``dot`` is not installed.

    The images come from Graphviz' ``dot`` where it is installed, and otherwise from
    ``picture`` with matplotlib. A picture that cannot be drawn is a warning, not an error: the
    ``.dot`` source is still there to render elsewhere.
    """
    if graph is None and picture is not None:
        graph = to_dot(picture)
    os.makedirs(directory, exist_ok=True)
    written = []
    if graph is not None:
        dot_path = os.path.join(directory, f"{stem}.dot")
        with open(dot_path, "w", encoding="utf-8") as f:
            f.write(graph.source)
        written.append(dot_path)
    if graph is not None and dot_binary() is not None:
        return written + render_dot(graph, directory, stem, formats)
    if picture is not None:
        from nascell.pictures import write_picture
        try:
            return written + write_picture(picture, directory, stem, formats)
        except Exception as e:  # a drawing problem must not cost the export
            logging.warning("could not draw %s.png/.svg with matplotlib (%s: %s)%s", stem,
                            type(e).__name__, e, "; the .dot source is there" if graph else "")
            for fmt in formats:
                path = os.path.join(directory, f"{stem}.{fmt}")
                if os.path.exists(path):
                    os.remove(path)
            return written
    if graph is not None:
        logging.info("Graphviz 'dot' is not installed, so %s.dot was written but not "
                     "rendered. Render it with: dot -Tpng %s.dot -o %s.png (or -Tsvg), where "
                     "'dot' is installed (the graphviz system package: apt-get install "
                     "graphviz).", stem, stem, stem)
    return written
