"""Read-only queries behind the dashboard pages, one module per page (stock, products,
holds, alerts, activity, overview, jobs, admin) plus the shared keyset cursor codec
(`cursor`) and URL number parsing (`params`), and what /metrics reads at a scrape
(`metrics`). Views call these and render; nothing here changes stock or commits."""
