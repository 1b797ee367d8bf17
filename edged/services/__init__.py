"""Shop services: checkout, payments, printing. They know shops and nothing of USB."""
