"""Authorization (授权): comprehensive, per-domain and per-scenario grants, the decision point, quotas, tickets."""
