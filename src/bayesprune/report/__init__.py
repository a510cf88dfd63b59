"""The book: chapters, the study's claims judged, tables, figures and the published numbers beside ours."""
