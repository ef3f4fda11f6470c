"""From stored runs to numbers, tables and figures, without torch: the run store, metrics, aggregation,
statistics, tables and plots."""
