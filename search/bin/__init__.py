"""The command-line binaries (absl apps installed as console scripts) and their flags."""

from absl import flags


def define_once(define, name: str, *args, **kwargs) -> None:
    """Define a flag unless a binary imported before into this process has it (nascell-search
    and nascell-train mean the same by --run_dir and --export), so the binaries import in any
    order."""
    if name not in flags.FLAGS:
        define(name, *args, **kwargs)
