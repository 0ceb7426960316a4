"""``nascell.search.keras_tuner``: the KerasTuner integration under the name the README uses.

    import nascell.search.keras_tuner as nkt
    tuner = nkt.StrategySearch(build_model, strategy="reinforce", objective="val_accuracy")

The code is `nascell.search.integrations.keras_tuner`; this module is that package itself
(the same module object, so ``nkt.Oracle is nascell.search.integrations.keras_tuner.Oracle``).
"""

import sys

from nascell.search.integrations import keras_tuner as _keras_tuner

sys.modules[__name__] = _keras_tuner
