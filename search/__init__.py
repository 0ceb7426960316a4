"""nascell.search: the architecture search engine.

    from nascell.search import create_space, create_strategy, create_evaluator, run_search

    space = create_space("nasbench201")
    strategy = create_strategy("reinforce", space, seed=0)
    evaluator = create_evaluator("nasbench201", csv_path="nb201_cifar10.csv")
    result = run_search(space, strategy, evaluator, run_dir="runs/nb201", num_trials=500)

Or drive any strategy yourself through its ask/tell interface:

    for trial in strategy.ask(8):
        strategy.tell(trial, my_reward(trial.spec))

Your own data (a text folder, arrays, tf.data, an image folder, a tensorflow-datasets name):

    evaluator = image_evaluator((x_train, y_train, x_test, y_test), epochs=3)
    run_search(space, strategy, evaluator, run_dir="runs/mine", num_trials=20)

Names that need TensorFlow (the controller, the executors' workers) load on first use.
"""

from nascell.search.core.evaluator import EvalResult, Evaluator, FunctionEvaluator
from nascell.search.core.space import Categorical, DepthSchedule, SearchSpace, Skips, SpaceError
from nascell.search.core.strategy import (
    Strategy,
    available_strategies,
    create_strategy,
    register_strategy,
)
from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.evaluators import available_evaluators, create_evaluator, register_evaluator
from nascell.search.spaces import available_spaces, create_space, register_space, space_from_config

_LAZY = {
    "Controller": "nascell.search.strategies.controller.controller",
    "ReinforceStrategy": "nascell.search.strategies",
    "RandomStrategy": "nascell.search.strategies",
    "EvolutionStrategy": "nascell.search.strategies",
    "LocalSearchStrategy": "nascell.search.strategies",
    "ENASStrategy": "nascell.search.strategies",
    "NASBench201Evaluator": "nascell.search.evaluators.nasbench201",
    "Executor": "nascell.search.executors",
    "LocalExecutor": "nascell.search.executors",
    "RayExecutor": "nascell.search.executors",
    "available_executors": "nascell.search.executors",
    "create_executor": "nascell.search.executors",
    "register_executor": "nascell.search.executors",
    "text_evaluator": "nascell.search.evaluators.own_data",
    "image_evaluator": "nascell.search.evaluators.own_data",
    "enas_evaluator": "nascell.search.evaluators.own_data",
    "SearchResult": "nascell.search.core.loop",
    "run_search": "nascell.search.core.loop",
    "RunDir": "nascell.search.rundir.run_dir",
    "RunDirError": "nascell.search.rundir.run_dir",
    "ConfigMismatchError": "nascell.search.rundir.run_dir",
    "TrialStore": "nascell.search.rundir.store",
    "StoreError": "nascell.search.rundir.store",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nascell.search' has no attribute {name!r}")


__all__ = sorted([
    "Categorical", "DepthSchedule", "EvalResult", "Evaluator", "FunctionEvaluator",
    "SearchSpace", "Skips", "SpaceError", "Strategy", "Trial", "TrialStatus",
    "available_evaluators", "available_spaces", "available_strategies", "create_evaluator",
    "create_space", "create_strategy", "register_evaluator", "register_space",
    "register_strategy", "space_from_config", *_LAZY,
])
