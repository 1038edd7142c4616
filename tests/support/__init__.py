"""Test support: fixtures that start real services (PostgreSQL databases, moto S3)."""
