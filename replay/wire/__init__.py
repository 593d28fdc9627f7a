"""Wire formats: pure parsers of what endpoints send, shared by the readers (logged answers)
and the providers (live answers), so a logged and a replayed answer are read the same way."""
