"""Plugin discovery (one pluggy manager), the typed registry of components, and --set option routing."""
