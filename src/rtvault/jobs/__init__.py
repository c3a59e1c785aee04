"""Jobs: the orchestration that ties the domains together (backup, restore, retention, checks)."""
