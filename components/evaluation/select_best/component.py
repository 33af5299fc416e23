"""KFP definition of `evaluation/select_best`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Input, Markdown, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def select_best_model(
    models: Input[list[Model]],
    best_model: Output[Model],
    leaderboard: Output[Markdown],
    metric: str = "val_accuracy",
) -> float:
    """Pick the best of several Model artifacts (e.g. `dsl.Collected` sweep trials) by a validation metric.

    Returns the winner's score; the winner is copied to `best_model`, the ranking goes to `leaderboard`.
    """
    from kubeforge.components.evaluation.select_best import core

    selection = core.select_best([model.path for model in models], metric=metric)
    core.publish_selection(selection, best_model.path, leaderboard.path)
    best_model.metadata["metric"] = metric
    best_model.metadata["score"] = selection.best.score
    best_model.metadata["trials"] = len(selection.ranking)
    return float(selection.best.score)
