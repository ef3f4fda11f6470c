"""Reading what the user has: feature files, annotations, ground truth, training-input reduction, the
preparation cache (written atomically) and the data check."""
