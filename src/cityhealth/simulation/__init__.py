"""The scenario-driven city simulator: a month of activity through the platform's public interfaces."""
