"""Index builder: knowledge/*.md -> sections -> passages -> embeddings -> an index directory, atomically."""
