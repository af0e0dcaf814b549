"""A file event becomes a document: fetch, sniff, extract, embed, index."""
