"""What to run, without torch: run specs and their canonical keys, grid files, selection protocols."""
