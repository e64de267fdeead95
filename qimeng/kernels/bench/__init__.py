"""Many (problem, candidate) pairs: resumable runs, metrics, reports (`qimeng bench`, `report`, `export`)."""
