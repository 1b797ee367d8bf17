"""Printing: the durable print queue between committed sales and the receipt printer."""
