"""The operations tooling: the `csinfra` CLI, the migration runner, the backfill and marts runners, the
embedded server, the demo and the report. The application never imports this package; it imports
`creatorstays_infra` (the online library), which loads none of it."""
