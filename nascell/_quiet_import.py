"""Imported first by `nascell/__init__.py`: in a quiet process (a nascell binary run without
``--verbosity``, or one of its workers) TensorFlow is imported here, before the package's own
modules need it, with its native log lines hidden (`nascell._quiet.prepare`)."""

from nascell._quiet import prepare

prepare()
