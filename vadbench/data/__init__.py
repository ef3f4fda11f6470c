"""Reading what the user has: feature files, annotations, ground truth, training-input reduction, the
preparation cache and the data check."""
