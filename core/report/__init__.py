"""What is written for people: the lesson files, LIFECYCLE.md and the per-step views the CLI and the app show."""
