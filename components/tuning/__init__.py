"""Hyperparameter tuning components: studies that search training parameters and stop bad trials early."""
