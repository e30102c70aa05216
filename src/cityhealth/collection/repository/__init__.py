"""Every query of the collection domain, a module per use case.

PostgreSQL gets COPY and array joins; SQLite executemany. stored_records: the unit lock, the existence probe,
inserts, superseding and updating; counters: the quality counters; managed_records, bulk_jobs, raw_payloads,
code_tables; organizations: senders and areas as the registry holds them. dialect and table_writes serve them all.
"""
