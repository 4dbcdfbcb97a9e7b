"""A small shop: orders, their lines and receipts, product sales counted by background jobs on RQ."""
