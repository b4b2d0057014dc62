"""Results as data: what a run's figures mean against the challenge (summary, compare), and the
recorded research (reference runs, the ablation, the frontier search) with their one loader and merge."""
