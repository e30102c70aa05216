"""校验: checking a batch of one form's records against the standard, column by column.

Each field's checks run over the whole column at once: type and length checks are set and map operations
that stay in C for a clean column, code-table and code↔name checks look at the distinct values (a column of
50,000 sex codes has four), and only a column that fails falls back to a per-value pass to say which record
broke which rule. Cross-field rules (ID number against sex and birth date, time order, amounts) then run per
record. Nothing here touches the database: code tables loaded by the operator arrive as `loaded`.
"""
