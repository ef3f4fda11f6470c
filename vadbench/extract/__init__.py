"""From videos to features (`vadbench extract`): decode videos or frame folders, cut snippets, crop and
normalise them as an extractor declares, run its network in batches and write the files the dataset
adapters read. Needs the optional ``extract`` dependencies (PyAV, Pillow) only when it runs."""
