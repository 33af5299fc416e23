"""KFP definition of `preprocess/tabular`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def preprocess_tabular(
    data: Input[Dataset],
    label_column: str,
    train_data: Output[Dataset],
    validation_data: Output[Dataset],
    test_data: Output[Dataset],
    preprocessor: Output[Artifact],
    statistics: Output[Markdown],
    task: str = "",
    schema_json: str = "",
    numeric_impute: str = "median",
    clip_low_quantile: float = 0.005,
    clip_high_quantile: float = 0.995,
    encoding: str = "onehot",
    unknown_categories: str = "infrequent",
    unknown_categories_by_column: str = "",
    min_category_rows: int = 5,
    max_categories: int = 50,
    validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 42,
    engine: str = "duckdb",
    memory_limit_mb: int = 0,
    sampling: str = "none",
    class_weights: str = "none",
) -> None:
    """Check a CSV/Parquet table, split it (stratified) and fit a preprocessor on the training split.

    `engine` is duckdb (streams Parquet; `memory_limit_mb` > 0 bounds what it adds to the process's
    memory on top of its libraries, 0 leaves it unlimited), pandas or spark; all three produce the
    same splits and the same fitted preprocessor. For imbalanced classes,
    `sampling` (none, undersample, oversample) balances the training split, deterministically per `seed`,
    and `class_weights="balanced"` stores loss weights in the preprocessor for training.
    `task` is classification, regression or empty (inferred from the label; the statistics say why).
    Rare and unseen categories follow `unknown_categories` (infrequent: one reserved level; ignore:
    all zeros; error: refuse them), per column in `unknown_categories_by_column` (JSON); categories
    on fewer than `min_category_rows` training rows or beyond the `max_categories` most frequent
    (0: no limit) are folded.
    """
    from kubeforge.categories import parse_column_policies
    from kubeforge.components.preprocess.tabular import core
    from kubeforge.preprocessor import PreprocessOptions

    result = core.preprocess(
        data.path,
        core.PreprocessOutputs(
            train=train_data.path,
            validation=validation_data.path,
            test=test_data.path,
            preprocessor=preprocessor.path,
            statistics=statistics.path,
        ),
        label=label_column,
        task=task,
        schema_json=schema_json,
        options=PreprocessOptions(
            numeric_impute=numeric_impute,  # type: ignore[arg-type]
            clip_quantiles=(clip_low_quantile, clip_high_quantile) if clip_high_quantile > 0 else None,
            encoding=encoding,  # type: ignore[arg-type]
            unknown_categories=unknown_categories,  # type: ignore[arg-type]
            column_policies=parse_column_policies(unknown_categories_by_column),
            min_category_rows=min_category_rows,
            max_categories=max_categories,
        ),
        fractions=core.SplitFractions(validation=validation_fraction, test=test_fraction),
        seed=seed,
        engine=engine,
        memory_limit_mb=memory_limit_mb,
        balance=core.ClassBalance(sampling=sampling, class_weights=class_weights),
    )
    for artifact, split in ((train_data, "train"), (validation_data, "validation"), (test_data, "test")):
        artifact.metadata["rows"] = result.rows[split]
    preprocessor.metadata["format"] = "kubeforge.preprocessor/v2"
    preprocessor.metadata["task"] = result.preprocessor.task
    preprocessor.metadata["output_columns"] = len(result.preprocessor.output_columns)
    if result.preprocessor.class_weights is not None:
        preprocessor.metadata["class_weights"] = dict(
            zip(map(str, result.preprocessor.classes or []), result.preprocessor.class_weights, strict=True)
        )
