"""Server-rendered pages: the bulletin, the data-quality dashboard, operator login."""
