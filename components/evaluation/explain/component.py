"""KFP definition of `evaluation/explain`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def explain_model(
    model: Input[Model],
    data: Input[Dataset],
    importance: Output[Markdown],
    explanations: Output[Artifact],
    sample_rows: int = 200,
    method: str = "auto",
    seed: int = 0,
) -> str:
    """Attribute `model`'s predictions on up to `sample_rows` rows of `data` to its raw input columns.

    `method`: integrated_gradients (captum), permutation (model-agnostic) or auto (the first when captum
    is installed). One-hot groups are summed back to their column. `importance` gets the ranked table;
    `explanations` a folder with importance.png, importance.md and rows.jsonl (each row's top columns).
    Returns the most important column.
    """
    import shutil

    from kubeforge.components.evaluation.explain import core

    explanation = core.explain(model.path, data.path, sample_rows=sample_rows, method=method, seed=seed)
    core.publish(explanation, explanations.path)
    shutil.copyfile(f"{explanations.path}/{core.TABLE_FILE}", importance.path)
    explanations.metadata["method"] = explanation.method
    explanations.metadata["rows"] = len(explanation.predictions)
    return str(next(iter(explanation.importance)))
