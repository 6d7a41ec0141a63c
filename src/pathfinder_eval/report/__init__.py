"""Presentation: view data (with disclosure control), charts and templated HTML."""
