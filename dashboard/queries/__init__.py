"""Read-only queries behind the dashboard pages (nothing here changes stock)."""
