"""Photos, film stills and videos → a labelled sketch dataset the trainer reads as it is (see build.py)."""
