"""Architecture pictures: each figure built once, drawn by Graphviz or by matplotlib.

    from nascell.pictures import picture_for, write_picture
    write_picture(picture_for(NAS_CELL_SPEC), "out")     # out/architecture.png, .svg

* `model`: what a picture shows (`Picture`, `Panel`, `Node`, `Edge`, with layout hints),
  renderer-neutral;
* `figures`: the picture of each spec kind (a cell tree like the paper's Figure 8, a conv net
  like Figure 7, the ENAS cells and networks), which the kinds registry hands out
  (`nascell.kinds.SpecKind.picture`);
* `dot`: Graphviz drawing (DOT source, rendered by the ``dot`` binary);
* `layout`: where boxes and edges go for matplotlib (pure geometry);
* `render`: matplotlib drawing (imported on first use: importing this package loads neither
  matplotlib nor graphviz).

An export writes ``architecture.dot`` and draws ``architecture.png``/``.svg`` with Graphviz'
``dot`` where it is installed and with `write_picture` where it is not
(`nascell.diagram.write_diagram`).
"""

from nascell.pictures.figures import (
    cell_picture,
    conv_picture,
    enas_conv_picture,
    enas_macro_picture,
    enas_rnn_picture,
    picture_for,
)
from nascell.pictures.model import Edge, Node, Panel, Picture


def write_picture(picture, directory, stem="architecture", formats=("png", "svg"), dpi=None):
    """Draw ``picture`` into ``<directory>/<stem>.<fmt>``; see `nascell.pictures.render`."""
    from nascell.pictures import render
    kwargs = {} if dpi is None else {"dpi": dpi}
    return render.write_picture(picture, directory, stem, formats, **kwargs)


__all__ = ["Edge", "Node", "Panel", "Picture", "cell_picture", "conv_picture",
           "enas_conv_picture", "enas_macro_picture", "enas_rnn_picture", "picture_for",
           "write_picture"]
