"""hyperparameter_sweep: one training trial per search-space point, the best picked and evaluated."""
